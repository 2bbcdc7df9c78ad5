"""LLM layer throughput against the loopback OpenAI-compatible server.

For each concurrency C, send N requests to a server that answers every request after a fixed
latency L, through the full client path (cache writes, accounting, progress), and compare the
achieved calls/s with the ideal C/L. Then replay 10,000 cached requests.

    .venv/bin/python benchmarks/llm_throughput.py [--requests 2000] [--latency 0.1]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

from persona_testbed.llm import ClientSettings, LLMClient, Message
from persona_testbed.testing.loopback import LoopbackServer


def run_batch(
    base_url: str, cache: Path, concurrency: int, prompts: list[str]
) -> tuple[float, float]:
    settings = ClientSettings(
        cache_path=cache, base_url=base_url, concurrency=concurrency, show_progress=False
    )
    client = LLMClient.from_spec("openai:loopback", settings)
    requests = [client.request([Message(role="user", content=p)], max_tokens=16) for p in prompts]
    cpu0, wall0 = time.process_time(), time.perf_counter()
    results = client.complete_batch(requests)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    assert len(results) == len(prompts)
    client.close()
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 64, 256])
    parser.add_argument("--replay", type=int, default=10_000)
    parser.add_argument(
        "--loops", nargs="+", default=["uvloop", "asyncio"], help="client event loops to compare"
    )
    args = parser.parse_args()

    print(
        f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}"
    )
    print(
        "\n| C | client loop | requests | wall s | calls/s | ideal C/L | % of ideal | CPU ms/call |"
    )
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp, LoopbackServer(latency=args.latency) as server:
        for concurrency in args.concurrency:
            for loop in args.loops:  # side by side: same server, same moment
                os.environ["PERSONA_EVENT_LOOP"] = "auto" if loop == "uvloop" else "asyncio"
                prompts = [f"c{concurrency} {loop} request {i}" for i in range(args.requests)]
                cache = Path(tmp) / f"c{concurrency}-{loop}.sqlite"
                wall, cpu = run_batch(server.base_url, cache, concurrency, prompts)
                rate, ideal = args.requests / wall, concurrency / args.latency
                print(
                    f"| {concurrency} | {loop} | {args.requests} | {wall:.2f} | {rate:.1f} | "
                    f"{ideal:.0f} | {100 * rate / ideal:.1f}% | {1000 * cpu / args.requests:.3f} |"
                )
    os.environ["PERSONA_EVENT_LOOP"] = "auto"

    with tempfile.TemporaryDirectory() as tmp, LoopbackServer(latency=0.0) as server:
        cache = Path(tmp) / "replay.sqlite"
        prompts = [f"replay request {i}" for i in range(args.replay)]
        run_batch(server.base_url, cache, 64, prompts)  # fill the cache
        before = server.stats()["total"]
        wall, cpu = run_batch(server.base_url, cache, 64, prompts)
        assert server.stats()["total"] == before, "replay reached the server"
        print("\n| cache replay | requests | wall s | calls/s | client CPU ms/call |")
        print("|---|---|---|---|---|")
        print(
            f"| SQLite WAL | {args.replay} | {wall:.2f} | {args.replay / wall:.0f} | "
            f"{1000 * cpu / args.replay:.3f} |"
        )


if __name__ == "__main__":
    main()
