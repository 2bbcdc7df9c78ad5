"""PERSONA Bench stage throughput against the loopback OpenAI-compatible server.

Runs the whole stage (pairs, answers for all four methods, critic verdicts, subtlety checks,
metrics, tables, plots) for N pairs x k samples against a server that answers every request after
a fixed latency L, with the model under test and the judge both `openai:` specs. Reports the
wall time against the ideal time of the calls alone (calls x L / C); then re-runs it from the
cache (no call sent: what remains is the cache reads and the analysis).

    .venv/bin/python benchmarks/bench_stage.py [--pairs 100] [--k 4] [--latency 0.1]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import polars as pl

from persona_testbed.bench import BenchConfig, run_bench_stage
from persona_testbed.contracts import ATTRIBUTES
from persona_testbed.llm import ClientSettings
from persona_testbed.llm.loopback import LoopbackServer
from persona_testbed.run import RunDir


def write_inputs(run: RunDir, personas: int, prompts: int) -> None:
    rows = []
    for i in range(personas):
        row: dict[str, object] = {name: f"{name} {i % 5}" for name in ATTRIBUTES}
        row.update({"persona_id": f"p{i}", "split": "test", "age": 20 + i % 60})
        rows.append(row)
    pl.DataFrame(rows, infer_schema_length=None).write_parquet(run.file("personas.parquet"))
    pl.DataFrame(
        {
            "prompt_id": [f"q{i}" for i in range(prompts)],
            "text": [f"Question {i}: what should I do?" for i in range(prompts)],
            "split": ["heldout"] * prompts,
            "kept": [True] * prompts,
        }
    ).write_parquet(run.file("prompts.parquet"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=100)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as tmp, LoopbackServer(latency=args.latency) as server:
        server.set_rules(
            [
                {
                    "contains": "Reply Yes or No",
                    "reply": "No",
                    "logprobs": {"No": -0.1, "Yes": -2.4},
                },
                {
                    "contains": "ANSWER:",
                    "reply": json.dumps({"reasoning": "fits", "needs_revision": False}),
                },
            ]
        )
        run = RunDir.create(Path(tmp) / "run")
        write_inputs(run, personas=max(10, args.pairs // 5), prompts=20)
        settings = ClientSettings(
            base_url=server.base_url,
            concurrency=args.concurrency,
            cache_path=Path(tmp) / "cache.sqlite",
            show_progress=False,
        )
        config = BenchConfig(
            models=("openai:loopback",), judge="openai:loopback-judge", n=args.pairs, k=args.k
        )
        for label in ("cold", "cached"):
            started = time.perf_counter()
            result = run_bench_stage(run, config, settings=settings, force=True)
            wall = time.perf_counter() - started
            calls = sum(u.calls for u in result.usage.values())
            hits = sum(u.cache_hits for u in result.usage.values())
            ideal = calls * args.latency / args.concurrency
            print(
                f"| {label} | {args.pairs} pairs x k={args.k} x 4 methods | {calls} calls, "
                f"{hits} cache hits | wall {wall:.1f} s | ideal call time {ideal:.1f} s |"
            )


if __name__ == "__main__":
    main()
