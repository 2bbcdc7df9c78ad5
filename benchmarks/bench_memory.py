"""Peak memory (RSS) of the PERSONA Bench stage on a synthetic job with a scripted model.

Each measurement runs the whole stage (answers for all four methods, critic verdicts, subtlety
checks, Parquet, metrics, tables, plots) in a fresh child process on a fresh response cache,
so the child's `ru_maxrss` is that run's peak alone. The model under test and the judge are
in-process scripted backends (testing.ScriptedBackend, keeping no list of calls) behind the real
LLMClient (cache, retries, checks): no network, so a job large enough for its frames to matter
runs in minutes. Inputs are synthetic: test personas with every attribute filled (about the
length of a census persona) and held-out prompts. Each answer is a ~400-word reply unique to its
request, with an "Answer:" line (so chain of thought parses; `max_tokens` 1024); the judge
passes every answer and gives each a P(Yes) of 0.1 for the subtlety check.

`--chunk-pairs` takes several sizes; `--before SRC` adds a run of another source tree (such as
the code before chunking: `git archive <rev> src | tar -x -C DIR`, then `--before DIR/src`),
so before and after are measured side by side in one session.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_memory.py --pairs 4000 \\
        --chunk-pairs 5000 500 --before /tmp/old/src
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

WORDS = ("people", "values", "family", "money", "work", "time", "community", "health", "fair")


def sentence(rng: np.random.Generator, n_words: int) -> str:
    return " ".join(rng.choice(WORDS, n_words)).capitalize() + "."


def write_inputs(folder: Path, personas: int, prompts: int) -> None:
    from persona_testbed import testing

    rng = np.random.default_rng(0)
    rows = [
        testing.persona_row(
            i, "test", persona_id=f"p{i:05d}", fill=lambda name, index: sentence(rng, 5)
        )
        for i in range(personas)
    ]
    for row in rows:
        row["age"] = int(rng.integers(18, 90))
    testing.write_personas(folder / "personas.parquet", rows)
    pl.DataFrame(
        {
            "prompt_id": [f"q{i:05d}" for i in range(prompts)],
            "text": [
                f"Question {i}: should " + " ".join(rng.choice(WORDS, 10)) + "?"
                for i in range(prompts)
            ],
            "topic": [f"topic {i % 20}" for i in range(prompts)],
            "split": ["heldout"] * prompts,
            "kept": [True] * prompts,
        }
    ).write_parquet(folder / "prompts.parquet")


class Model:
    """Replies by request: the judge's verdict or Yes/No, else a long answer (or summary)."""

    def __init__(self) -> None:
        rng = np.random.default_rng(1)
        self.body = " ".join(sentence(rng, 10) for _ in range(40))  # ~400 words
        self.verdict = json.dumps({"reasoning": sentence(rng, 20), "needs_revision": False})

    def __call__(self, request: Any) -> str | tuple[str, dict[str, float]]:
        if request.top_logprobs:
            return ("No", {"Yes": 0.1, "No": 0.9})
        last = request.messages[-1].content
        if "ANSWER:" in last:
            return self.verdict
        # Unique per request, as a sampled answer is: no reply is shared through the cache.
        tag = hashlib.sha256(last.encode()).hexdigest()[:12]
        return f"Reasoning: {tag} {self.body}\nAnswer: {tag} {self.body[:400]}"


def lean_client(model_id: str, cache: Path) -> Any:
    """A scripted client whose backend keeps no list of its calls (the tests' does)."""
    from persona_testbed.testing import scripted_client

    client = scripted_client(Model(), cache, model_id=model_id, concurrency=16)
    backend: Any = client.backend  # a scripted backend: it keeps every request in `calls`
    complete = backend.complete

    async def forgetful(request: Any) -> Any:
        result = await complete(request)
        backend.calls.clear()
        return result

    backend.complete = forgetful
    return client


def rss_mb() -> float:
    """This process's resident set now (Linux)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def child(args: argparse.Namespace) -> None:
    """One measured run: the stage alone in this process."""
    import shutil

    from persona_testbed.bench import BenchConfig, run_bench_stage
    from persona_testbed.run import RunDir

    run = RunDir.create(Path(args.run))
    for name in ("personas.parquet", "prompts.parquet"):
        shutil.copy(Path(args.inputs) / name, run.file(name))
    cache = Path(args.run).parent / f"{Path(args.run).name}.sqlite"
    clients = {"m": lean_client("scripted:model", cache), "j": lean_client("scripted:judge", cache)}
    config = BenchConfig(models=("m",), judge="j", n=args.pairs, k=args.k, max_tokens=1024)
    chunked = "chunk_pairs" in inspect.signature(run_bench_stage).parameters
    kwargs = {"chunk_pairs": args.chunk_pairs[0]} if chunked else {}
    before = rss_mb()
    started = time.perf_counter()
    result = run_bench_stage(run, config, clients=clients, **kwargs)
    wall = time.perf_counter() - started
    record = run.stage_record("bench")
    print(
        json.dumps(
            {
                "chunk_pairs": kwargs.get("chunk_pairs"),
                "rss_before_stage_mb": round(before, 1),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                "wall_s": round(wall, 1),
                "calls": sum(u.calls for u in result.usage.values()),
                "cache_hits": sum(u.cache_hits for u in result.usage.values()),
                "samples": record.stats["samples"] if record else None,
                "samples_mb": round(run.file("bench/samples.parquet").stat().st_size / 2**20, 1),
            }
        )
    )


def measure(
    args: argparse.Namespace, tmp: Path, src: str, chunk: int | None, label: str
) -> dict[str, object]:
    command = [
        sys.executable, __file__, "--child", "--run", str(tmp / label), "--inputs", str(tmp),
        "--pairs", str(args.pairs), "--k", str(args.k),
    ]  # fmt: skip
    if chunk is not None:
        command += ["--chunk-pairs", str(chunk)]
    env = {**os.environ, "PYTHONPATH": src}
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{label} failed:\n{done.stderr[-3000:]}")
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=10_000)
    parser.add_argument("--k", type=int, default=1)
    parser.add_argument("--chunk-pairs", type=int, nargs="+", default=[1_000])
    parser.add_argument("--before", help="another source tree to measure too (its src/)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--run", help=argparse.SUPPRESS)
    parser.add_argument("--inputs", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    here = str(Path(__file__).resolve().parents[1] / "src")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, python "
          f"{platform.python_version()}, load {os.getloadavg()[0]:.2f}")  # fmt: skip
    variants: list[tuple[str, str, int | None]] = []
    if args.before:
        variants.append(("before", args.before, None))
    variants += [(f"after, chunks of {c}", here, c) for c in args.chunk_pairs]
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        write_inputs(tmp, personas=max(50, args.pairs // 20), prompts=200)
        print(
            "| code | pairs x k | calls sent | samples | wall | RSS before the stage | peak RSS |"
        )
        print("|---|---|---|---|---|---|---|")
        for i, (label, src, chunk) in enumerate(variants):
            row = measure(args, tmp, src, chunk, f"run{i}")
            print(
                f"| {label} | {args.pairs} x {args.k} | {row['calls']} | {row['samples']} | "
                f"{row['wall_s']} s | {row['rss_before_stage_mb']} MB | {row['peak_rss_mb']} MB |",
                flush=True,
            )


if __name__ == "__main__":
    main()
