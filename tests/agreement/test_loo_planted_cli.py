"""Planted truth through the real CLI (issue 13, section 6): `persona agreement loo` against a
scripted OpenAI-compatible server whose annotator's choice depends on one attribute only
(tests/planted/loo_server.py). That attribute must rank first, and the items the annotator
leaves without label mass must be counted as undecided, not labelled."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from persona_testbed.agreement.loo_stage import ATTRIBUTES_PARQUET, SUMMARY_JSON
from persona_testbed.cli.app import app
from tests.planted.loo_server import PLANTED_ATTRIBUTE, PREFERRED, SILENT_MARKER, PlantedLooServer

from .helpers import make_run

ATTRIBUTES = ["age", "sex", "political views", PLANTED_ATTRIBUTE]
QUESTIONS = [
    "Should the government raise the minimum wage?",
    "Is it ever right to eat meat?",
    "Should college be free for everyone?",
    "Are cities better places to live than the countryside?",
    "Should voting be compulsory?",
    f"Is nuclear power a good answer to climate change? {SILENT_MARKER}",
]
PAIRS = 4


def test_loo_cli_ranks_the_planted_attribute_first(tmp_path: Path) -> None:
    # The planted annotator follows a per-question coin; both faces must occur among the
    # decided questions, or every label would be constant and kappa undefined.
    coins = [zlib.crc32(q.encode()) % 2 for q in QUESTIONS if SILENT_MARKER not in q]
    assert set(coins) == {0, 1}
    run = make_run(tmp_path / "run", personas=12)
    questions = tmp_path / "questions.txt"
    questions.write_text("\n".join(QUESTIONS) + "\n", encoding="utf-8")
    attribute_options = [part for name in ATTRIBUTES for part in ("--attribute", name)]
    with PlantedLooServer() as server:
        result = CliRunner().invoke(
            app,
            [
                "agreement", "loo", "--run", str(run.path), *attribute_options,
                "--pairs", str(PAIRS), "--questions", str(len(QUESTIONS)),
                "--questions-file", str(questions), "--model", "openai:planted",
                "--base-url", server.base_url, "--cache", str(tmp_path / "cache.sqlite"),
                "--resamples", "100", "--no-progress",
            ],
        )  # fmt: skip
    assert result.exit_code == 0, (result.output, result.exception)
    ranking_line = next(
        line for line in result.output.splitlines() if line.startswith("most influential first")
    )
    assert ranking_line.split(": ", 1)[1].split(", ")[0] == PLANTED_ATTRIBUTE

    table = pl.read_parquet(run.file(ATTRIBUTES_PARQUET)).sort("influence_rank")
    assert table["attribute"][0] == PLANTED_ATTRIBUTE
    planted = table.row(0, named=True)
    # Showing the attribute flips every decided choice; no other attribute changes any.
    assert planted["observed_agreement"] == pytest.approx(0.0)
    assert planted["pabak_mean"] == pytest.approx(-1.0)
    # Kappa of perfectly flipped labels still depends on prevalence: with a share s of "A"
    # without the attribute (1 - s with it), p_e = 2 s (1 - s) and kappa = -p_e / (1 - p_e),
    # -1 only when s = 1/2. Here 1 of the 5 decided questions has the odd coin: kappa -8/17.
    share_a = sum(coins) / len(coins)
    chance = 2 * share_a * (1 - share_a)
    assert planted["kappa_mean"] == pytest.approx(-chance / (1 - chance))
    assert planted["mean_abs_delta_p"] == pytest.approx(2 * PREFERRED - 1)
    others = table.filter(pl.col("attribute") != PLANTED_ATTRIBUTE)
    assert others["pabak_mean"].to_list() == pytest.approx([1.0] * 3)
    assert others["kappa_mean"].to_list() == pytest.approx([1.0] * 3)
    assert others["mean_abs_delta_p"].to_list() == pytest.approx([0.0] * 3)
    # The silent question: both roles of every pair are undecided on it, left out and counted.
    assert (table["n_pairs"] == PAIRS).all()
    assert (table["items_per_pair"] == len(QUESTIONS) - 1).all()
    assert (table["items_unlabelled"] == PAIRS).all()
    stats = json.loads(run.file(SUMMARY_JSON).read_text())["stats"]
    assert stats["labels_undecided"] == len(ATTRIBUTES) * PAIRS * 2
    assert stats["label_ties"] == 0
    assert f"{len(ATTRIBUTES) * PAIRS * 2} undecided" in result.output
