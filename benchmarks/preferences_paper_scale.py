"""The paper-scale preference job (1,586 personas x 200 pairs) against the loopback
OpenAI-compatible server, through the real `preferences` stage (sampling, four model steps,
Parquet, verification, DatasetDict export).

The server answers every request after a fixed latency (100 ms) with canned replies of
realistic length; the client runs at concurrency 256 on a fresh cache. On a 2-core machine the
full job (about 1.27 million calls) takes longer than one sitting, so by default a fraction of
the personas is run (all 3,868 prompts) and the totals are extrapolated by calls; the output
says which numbers are measured and which are extrapolated.

    .venv/bin/python benchmarks/preferences_paper_scale.py [--fraction 0.1] [--latency 0.1]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from persona_testbed.contracts import ATTRIBUTES
from persona_testbed.llm import ClientSettings, LLMClient
from persona_testbed.llm.loopback import LoopbackServer
from persona_testbed.preferences import (
    PairSizes,
    PreferencesConfig,
    load_templates,
    plan_calls,
    run_preferences_stage,
)
from persona_testbed.run import RunDir

PAPER_PERSONAS = 1586
PAPER_PROMPTS = 3868
PAPER_TRAIN = 3000
WORDS = ("people", "values", "family", "money", "work", "time", "community", "health", "fair")


def sentence(rng: np.random.Generator, n_words: int) -> str:
    return " ".join(rng.choice(WORDS, n_words)).capitalize() + "."


def write_inputs(run: Path, n_personas: int, rng: np.random.Generator) -> None:
    """Synthetic personas (every attribute filled, about 1,100 characters of text, like a
    census persona) and 3,868 kept prompts split 3,000 / 868 over 20 topics."""
    rows = []
    for i in range(n_personas):
        row: dict[str, object] = {name: sentence(rng, 5) for name in ATTRIBUTES}
        row["age"] = int(rng.integers(18, 90))
        rows.append({"persona_id": f"p{i:05d}", "split": "train", **row})
    schema = {name: pl.String for name in ATTRIBUTES} | {
        "age": pl.Int64,
        "persona_id": pl.String,
        "split": pl.String,
    }
    pl.DataFrame(rows, schema=schema).write_parquet(run / "personas.parquet")
    prompts = pl.DataFrame(
        {
            "prompt_id": [f"q{i:05d}" for i in range(PAPER_PROMPTS)],
            "text": [
                f"Question {i}: should " + " ".join(rng.choice(WORDS, 10)) + "?"
                for i in range(PAPER_PROMPTS)
            ],
            "topic": [f"topic {i % 20}" for i in range(PAPER_PROMPTS)],
            "split": ["train"] * PAPER_TRAIN + ["heldout"] * (PAPER_PROMPTS - PAPER_TRAIN),
            "kept": [True] * PAPER_PROMPTS,
        }
    )
    prompts.write_parquet(run / "prompts.parquet")


def canned_replies(rng: np.random.Generator) -> list[dict[str, object]]:
    """Server rules. Base answers and critiques are the server's echo of the prompt, so every
    critique is unique per (persona, prompt) like a real model's (a canned critique would make
    the paper's persona-free revision prompts identical across personas, and the client would
    send each once). Revisions are a canned ~100-word answer; the judge leans 0.8 towards
    whichever position holds the revision."""
    revised = "REVISED PREFERENCE: Tailored " + sentence(rng, 100)
    answer = revised.removeprefix("REVISED PREFERENCE: ")
    lean = {"A": float(np.log(0.8)), "B": float(np.log(0.2))}
    return [
        {"contains": "Revise the COMPLETION", "reply": revised + "\nDONE"},
        {"contains": f"Answer A: {answer[:40]}", "reply": "A", "logprobs": lean},
        {
            "contains": f"Answer B: {answer[:40]}",
            "reply": "B",
            "logprobs": {"A": lean["B"], "B": lean["A"]},
        },
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fraction", type=float, default=0.1, help="share of the 1,586 personas")
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--concurrency", type=int, default=256)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    n_personas = max(1, round(PAPER_PERSONAS * args.fraction))
    config = PreferencesConfig(model="openai:loopback", seed=0)
    full_plan = plan_calls(
        PAPER_PERSONAS,
        PairSizes(),
        n_train_prompts=PAPER_TRAIN,
        n_heldout_prompts=PAPER_PROMPTS - PAPER_TRAIN,
        templates=load_templates("paper"),
        models=dict.fromkeys(("base", "critique", "revision", "judge"), "openai:gpt-4o"),
    )
    print(
        f"machine: {platform.machine()}, {len(os.sched_getaffinity(0))} cores, "
        f"python {platform.python_version()}"
    )
    print(
        f"paper-scale plan: {full_plan.n_pairs:,} pairs, {full_plan.calls:,} calls "
        f"(base {full_plan.steps[0].calls:,} shared; {full_plan.base_calls_saved:,} saved)"
    )
    with tempfile.TemporaryDirectory() as tmp, LoopbackServer(latency=args.latency) as server:
        run = RunDir.create(Path(tmp) / "run")
        write_inputs(run.path, n_personas, rng)
        server.set_rules(canned_replies(rng))
        settings = ClientSettings(
            cache_path=Path(tmp) / "cache.sqlite",
            base_url=server.base_url,
            concurrency=args.concurrency,
            show_progress=False,
        )
        client = LLMClient.from_spec("openai:loopback", settings)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        result = run_preferences_stage(run, config, client=client)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        client.close()
        served = server.stats()["total"]
        cache_mb = (Path(tmp) / "cache.sqlite").stat().st_size / 1e6
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    stats = result.stats
    pairs, calls = stats["pairs"], stats["model_calls"]
    ideal = calls / (args.concurrency / args.latency)
    scale = full_plan.calls / calls
    print(f"\nmeasured: {n_personas} personas ({args.fraction:.0%} of 1,586) x 200 pairs")
    print("| step | requests | calls sent |")
    print("|---|---|---|")
    for step, counts in stats["steps"].items():
        print(f"| {step} | {counts['requests']:,} | {counts['calls']:,} |")
    print("\n| metric | measured | full job (extrapolated by calls) |")
    print("|---|---|---|")
    rows = [
        ("pairs", f"{pairs:,}", f"{full_plan.n_pairs:,}"),
        ("model calls (server received)", f"{calls:,} ({served:,})", f"{full_plan.calls:,}"),
        (
            "calls saved by shared base answers",
            f"{stats['base_requests_saved_by_sharing']:,}",
            f"{full_plan.base_calls_saved:,}",
        ),
        ("wall time", f"{wall:,.1f} s", f"{wall * scale / 60:,.1f} min"),
        (
            "ideal wall (calls / (C / latency))",
            f"{ideal:,.1f} s",
            f"{ideal * scale / 60:,.1f} min",
        ),
        ("throughput", f"{calls / wall:,.0f} calls/s", ""),
        ("% of ideal", f"{100 * ideal / wall:.1f}%", ""),
        ("client CPU per pair", f"{1000 * cpu / pairs:.2f} ms", ""),
        ("client CPU per call", f"{1000 * cpu / calls:.3f} ms", ""),
        ("wall per pair", f"{1000 * wall / pairs:.2f} ms", ""),
        ("peak RSS (client)", f"{peak_rss_mb:,.0f} MB", ""),
        ("response cache size", f"{cache_mb:,.0f} MB", f"{cache_mb * scale / 1000:,.1f} GB"),
    ]  # fmt: skip
    for name, measured, full in rows:
        print(f"| {name} | {measured} | {full} |")
    print(f"\njudge share preferring y_w (server leans 0.8 to it): {stats['share_prefer_chosen']}")


if __name__ == "__main__":
    main()
