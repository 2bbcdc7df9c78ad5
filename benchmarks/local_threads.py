"""Embedded-model throughput by CPU threads per call, side by side in one process.

Sends the same batch of persona-length chat requests to the embedded model through the full
client path (no cache) with each thread count, alternating the settings over several rounds so
that a change in machine load hits every setting alike. Reports whether every setting writes the
same text: ggml splits a matrix product by rows, so the thread count must not change results.

    .venv/bin/python benchmarks/local_threads.py [--requests 8] [--rounds 2] [--threads 1 0]

`--threads 0` means the default: every core the process may use.
"""

from __future__ import annotations

import argparse
import platform
import time

from persona_testbed.llm import ClientSettings, LLMClient, Message
from persona_testbed.llm.backends.llamacpp import usable_cores

QUESTIONS = [
    "Should cities spend more on public transport or on roads?",
    "Is it fair to tax inherited wealth at a higher rate?",
    "Should schools teach personal finance instead of advanced math?",
    "Do you think remote work is good for communities?",
]
PERSONA = "\n".join(f"attribute {i}: a value of several words, number {i}" for i in range(33))


def run(threads: int | None, requests: int) -> tuple[float, int, list[str]]:
    settings = ClientSettings(cache_path=None, show_progress=False, n_threads=threads)
    client = LLMClient.from_spec("local:smollm2-135m", settings)
    batch = [
        client.request(
            [
                Message(role="system", content="You answer in two sentences."),
                Message(role="user", content=f"{PERSONA}\n\n{QUESTIONS[i % len(QUESTIONS)]}"),
            ],
            max_tokens=64,
            temperature=0.7,
            sample_index=i,
        )
        for i in range(requests)
    ]
    client.complete_batch(batch[:1])  # load the weights outside the timing
    start = time.perf_counter()
    results = client.complete_batch(batch)
    wall = time.perf_counter() - start
    client.close()
    return wall, sum(r.completion_tokens for r in results), [r.text for r in results]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 0])
    args = parser.parse_args()

    cores = usable_cores()
    print(f"machine: {platform.machine()}, {cores} usable cores")
    walls: dict[int, list[float]] = {t: [] for t in args.threads}
    texts: dict[int, list[str]] = {}
    tokens: dict[int, int] = {}
    for _ in range(args.rounds):
        for threads in args.threads:
            wall, completion, outputs = run(threads or None, args.requests)
            walls[threads].append(wall)
            tokens[threads] = completion
            texts[threads] = outputs
    reference = walls[args.threads[0]]
    print(
        "\n| threads per call | requests | completion tokens | best wall s | tokens/s | speed-up |"
    )
    print("|---|---|---|---|---|---|")
    for threads in args.threads:
        best = min(walls[threads])
        label = f"{threads}" if threads else f"default ({cores})"
        print(
            f"| {label} | {args.requests} | {tokens[threads]} | {best:.2f} | "
            f"{tokens[threads] / best:.1f} | {min(reference) / best:.2f}x |"
        )
    same = all(texts[t] == texts[args.threads[0]] for t in args.threads)
    print(f"\nsame text from every setting: {same}")


if __name__ == "__main__":
    main()
