"""Planted truth through the real CLI (issue 13, section 6): `persona bench` against a scripted
OpenAI-compatible server whose model personalizes only for female personas (70% of samples) and
whose critic passes exactly the personalized answers (tests/planted/bench_server.py).

Accuracy per method and per slice must recover the planted rates within the printed CIs."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable
from pathlib import Path

import polars as pl
from typer.testing import CliRunner

from persona_testbed.cli.app import app
from persona_testbed.run import RunDir
from tests.planted.bench_server import PERSONALIZE_RATE, PLANTED_VALUE, planted_bench_server

PAIRS, SAMPLES = 120, 2
ACCURACY = re.compile(
    r"openai:planted-model / (?P<method>[\w-]+): accuracy (?P<value>[\d.]+)"
    r" \[(?P<low>[\d.]+), (?P<high>[\d.]+)\]"
)


def test_bench_recovers_the_planted_personalization_rates(
    make_run: Callable[..., RunDir], tmp_path: Path
) -> None:
    run = make_run(n_personas=40, n_prompts=12)
    with planted_bench_server() as server:
        result = CliRunner().invoke(
            app,
            [
                "bench", "--run", str(run.path),
                "--model", "openai:planted-model", "--judge", "openai:planted-judge",
                "--base-url", server.base_url, "--methods", "persona,no-persona",
                "--n", str(PAIRS), "--k", str(SAMPLES),
                "--cache", str(tmp_path / "cache.sqlite"), "--no-progress",
            ],
        )  # fmt: skip
    assert result.exit_code == 0, (result.output, result.exception)

    samples = pl.read_parquet(run.file("bench/samples.parquet"))
    targeted = samples["persona_text"].str.contains(f"(?m)^sex: {PLANTED_VALUE}$")
    female_share = float(targeted.filter(samples["method"] == "persona").mean())  # type: ignore[arg-type]
    assert 0.3 < female_share < 0.7  # both groups are there to tell apart
    planted = {"persona": PERSONALIZE_RATE * female_share, "no-persona": 0.0}

    printed = {m["method"]: m for m in (x.groupdict() for x in ACCURACY.finditer(result.output))}
    assert set(printed) == set(planted), result.output
    for method, truth in planted.items():
        value, low, high = (float(printed[method][k]) for k in ("value", "low", "high"))
        assert low <= truth <= high, (method, truth, low, high)
        assert low <= value <= high and high - low < 0.35

    # The summary records the clusters the interval resampled: personas crossed with questions.
    summary = json.loads(run.file("bench/summary.json").read_text("utf-8"))
    persona_row = next(r for r in summary["results"] if r["method"] == "persona")
    assert persona_row["accuracy"]["clusters"] == samples["persona_id"].n_unique()
    assert persona_row["accuracy"]["crossed"] == samples["prompt_id"].n_unique()

    # Per slice: female personas at the planted rate, the others at zero.
    with run.file("bench/slices.csv").open(encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if r["slice"] == "sex"]
    by_key = {(r["method"], r["value"]): r for r in rows}
    for (method, sex), truth in {
        ("persona", "Female"): PERSONALIZE_RATE,
        ("persona", "Male"): 0.0,
        ("no-persona", "Female"): 0.0,
        ("no-persona", "Male"): 0.0,
    }.items():
        row = by_key[(method, sex)]
        low, high = float(row["ci_low"]), float(row["ci_high"])
        assert low <= truth <= high, (method, sex, truth, low, high)
        assert high - low < 0.45
    female = by_key[("persona", "Female")]
    assert abs(float(female["accuracy"]) - PERSONALIZE_RATE) < 0.15
