"""Planted truth through the real CLI (issue 13, section 6): `persona preferences` against a
scripted server whose role-play judge prefers y_w with a planted per-persona probability (0.9
for female personas, 0.6 for male ones; tests/planted/judge_server.py), read from first-token
log-probabilities on A/B in both orders. The verification share must recover the planted share
and its printed 95% CI must cover it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import polars as pl
from typer.testing import CliRunner

from persona_testbed.cli.app import app
from tests.planted.judge_server import PREFER_RATE, planted_judge_server
from tests.preferences.helpers import make_run

PERSONAS = 36


def test_verification_share_recovers_the_planted_judge(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", personas=PERSONAS, train=10, heldout=6)
    with planted_judge_server() as server:
        result = CliRunner().invoke(
            app,
            [
                "preferences", "--run", str(run.path),
                "--per-persona-train", "4", "--per-persona-test-seen", "1",
                "--per-persona-test-unseen", "1",
                "--model", "openai:planted", "--base-url", server.base_url,
                "--cache", str(tmp_path / "cache.sqlite"), "--no-progress",
            ],
        )  # fmt: skip
    assert result.exit_code == 0, (result.output, result.exception)

    frame = pl.read_parquet(run.file("preferences.parquet"))
    personas = pl.read_parquet(run.file("personas.parquet")).select("persona_id", "sex")
    sexes = frame.join(personas, on="persona_id")["sex"]
    # The planted share: the mean per-pair probability of preferring y_w.
    truth = float(sexes.replace_strict(PREFER_RATE, return_dtype=pl.Float64).mean())  # type: ignore[arg-type]

    report = json.loads(run.file("preferences/verification.json").read_text("utf-8"))
    overall = report["overall"]
    assert overall["undecided"] == 0 and overall["judged"] == frame.height
    assert overall["personas"] == frame["persona_id"].n_unique()
    assert overall["prompts"] == frame["prompt_id"].n_unique()
    low, high = overall["ci95_low"], overall["ci95_high"]
    assert low <= truth <= high, (truth, low, high)
    assert low <= overall["share_prefer_chosen"] <= high and high - low < 0.25
    assert abs(overall["share_prefer_chosen"] - truth) < 0.1

    # The printed interval is the one in the report.
    printed = re.search(r"95% CI (\d+\.\d)-(\d+\.\d)%", result.output)
    assert printed is not None, result.output
    assert printed.groups() == (f"{100 * low:.1f}", f"{100 * high:.1f}")
