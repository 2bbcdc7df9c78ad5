"""The paper-scale preference job (1,586 personas x 200 pairs) against the loopback
OpenAI-compatible server, through the real `preferences` stage (sampling, four model steps,
Parquet, verification, DatasetDict export).

The server (a separate process) answers every request after a fixed latency (100 ms) with
canned replies of realistic length; the client runs at concurrency 256 on a fresh cache in the
temporary folder (TMPDIR; the full job's cache is about 6 GB). `--fraction 1` runs the whole job
(about 1.27 million calls, 15-25 minutes on 2 cores) and reports measured values only; a smaller
fraction of the personas (all 3,868 prompts) also extrapolates the totals by calls, labelled as
such. Peak RSS is this (client) process's ru_maxrss at the end of the stage.

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

from persona_testbed import testing
from persona_testbed.llm import ClientSettings, LLMClient
from persona_testbed.preferences import (
    DEFAULT_CHUNK_PAIRS,
    PairSizes,
    PreferencesConfig,
    load_templates,
    plan_calls,
    run_preferences_stage,
)
from persona_testbed.run import RunDir
from persona_testbed.testing.loopback import LoopbackServer

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
        row = testing.persona_row(
            i, "train", persona_id=f"p{i:05d}", fill=lambda name, index: sentence(rng, 5)
        )
        row["age"] = int(rng.integers(18, 90))
        rows.append(row)
    testing.write_personas(run / "personas.parquet", rows)
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
    parser.add_argument(
        "--chunk-pairs", type=int, default=DEFAULT_CHUNK_PAIRS, help="pairs per row group"
    )
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    n_personas = max(1, round(PAPER_PERSONAS * args.fraction))
    # 512 tokens: the loopback server counts one token per word and cuts replies there; a
    # critique echoes its whole prompt (persona, question, answer: about 300 words), which at
    # the default 256 would be truncated and asked again, one call more per pair than the plan.
    config = PreferencesConfig(model="openai:loopback", seed=0, max_tokens=512)
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
        load_before = os.getloadavg()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        result = run_preferences_stage(run, config, client=client, chunk_pairs=args.chunk_pairs)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        load_after = os.getloadavg()
        # The stage's peak.
        peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        client.close()
        served = server.stats(by_prompt=False)["total"]
        cache_mb = (Path(tmp) / "cache.sqlite").stat().st_size / 1e6
        parquet_mb = result.preferences_path.stat().st_size / 1e6
        export_mb = sum(f.stat().st_size for f in result.dataset_path.rglob("*")) / 1e6
    stats = result.stats
    pairs, calls = stats["pairs"], stats["model_calls"]
    ideal = calls / (args.concurrency / args.latency)
    full = n_personas == PAPER_PERSONAS
    scale = full_plan.calls / calls
    print(f"\nmeasured: {n_personas} personas ({args.fraction:.0%} of 1,586) x 200 pairs")
    print("load average (1, 5, 15 min) before: {:.2f} {:.2f} {:.2f}".format(*load_before))
    print("load average (1, 5, 15 min) after: {:.2f} {:.2f} {:.2f}".format(*load_after))
    print("| step | requests | calls sent |")
    print("|---|---|---|")
    for step, counts in stats["steps"].items():
        print(f"| {step} | {counts['requests']:,} | {counts['calls']:,} |")
    rows = [
        ("pairs", f"{pairs:,}", f"{full_plan.n_pairs:,}"),
        ("model calls (server received)", f"{calls:,} ({served:,})", f"{full_plan.calls:,}"),
        (
            "calls saved by shared base answers",
            f"{stats['base_requests_saved_by_sharing']:,}",
            f"{full_plan.base_calls_saved:,}",
        ),
        ("wall time", f"{wall:,.1f} s ({wall / 60:,.1f} min)", f"{wall * scale / 60:,.1f} min"),
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
        ("preferences.parquet", f"{parquet_mb:,.0f} MB", ""),
        ("DatasetDict export", f"{export_mb:,.0f} MB", ""),
    ]  # fmt: skip
    if full:  # the whole job: nothing to extrapolate
        print("\n| metric | measured (full job) |")
        print("|---|---|")
        for name, measured, _ in rows:
            print(f"| {name} | {measured} |")
    else:
        print("\n| metric | measured | full job (extrapolated by calls) |")
        print("|---|---|---|")
        for name, measured, extrapolated in rows:
            print(f"| {name} | {measured} | {extrapolated} |")
    print(f"\njudge share preferring y_w (server leans 0.8 to it): {stats['share_prefer_chosen']}")


if __name__ == "__main__":
    main()
