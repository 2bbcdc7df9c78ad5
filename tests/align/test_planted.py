"""Planted preferences: y_w depends on one persona attribute only (the persona-blind model is
at chance, the persona-conditioned one recovers it), or y_w is always the shorter answer (the
blind model is near perfect and the outputs say the pairs do not test pluralism)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from persona_testbed.align import (
    GROUP,
    JUDGE,
    PERSONA_BLIND,
    PERSONA_CONDITIONED,
    AlignConfig,
    HashingEmbedder,
    run_align_stage,
)
from persona_testbed.report import write_report
from tests.align.helpers import by_religion, planted_run, shorter

FAST = AlignConfig(embedder="hashing", resamples=500)


def _row(board: pl.DataFrame, method: str, split: str) -> dict[str, object]:
    rows = board.filter((pl.col("method") == method) & (pl.col("split") == split))
    assert rows.height == 1
    return rows.row(0, named=True)


def test_one_planted_attribute_blind_at_chance_conditioned_recovers_it(tmp_path: Path) -> None:
    run = planted_run(tmp_path / "run", by_religion)
    result = run_align_stage(run, FAST, embedder=HashingEmbedder())
    for split in ("test_seen", "test_unseen"):
        blind = _row(result.leaderboard, PERSONA_BLIND, split)
        assert blind["ci_low"] <= 0.5 <= blind["ci_high"], blind  # type: ignore[operator]
        conditioned = _row(result.leaderboard, PERSONA_CONDITIONED, split)
        assert conditioned["accuracy"] > 0.8  # type: ignore[operator]
        assert conditioned["gap_ci_low"] > 0  # type: ignore[operator]
    verdicts = {d.split: d.verdict for d in result.diagnostics}
    assert verdicts == {"test_seen": "persona-helps", "test_unseen": "persona-helps"}
    # The group baseline has neighbours on test_seen prompts only: unseen prompts get 0.5.
    assert _row(result.leaderboard, GROUP, "test_unseen")["accuracy"] == 0.5
    assert "without a train pair" in str(_row(result.leaderboard, GROUP, "test_unseen")["note"])
    # The slices show the planted attribute: the blind model is right for one religion only.
    sliced = result.slices.filter(
        (pl.col("method") == PERSONA_BLIND) & (pl.col("slice") == "religion")
    )
    assert set(sliced["value"]) == {"Catholic", "None"}
    conditioned_slices = result.slices.filter(pl.col("method") == PERSONA_CONDITIONED)
    assert conditioned_slices.filter(pl.col("slice") == "religion")["accuracy"].min() > 0.8  # type: ignore[operator]


def test_shorter_answer_makes_blind_near_perfect_and_is_flagged(tmp_path: Path) -> None:
    run = planted_run(tmp_path / "run", shorter, personas=20, train=6, seen=3, unseen=3)
    result = run_align_stage(run, FAST, embedder=HashingEmbedder())
    for split in ("test_seen", "test_unseen"):
        assert _row(result.leaderboard, PERSONA_BLIND, split)["accuracy"] >= 0.95  # type: ignore[operator]
    assert {d.verdict for d in result.diagnostics} == {"blind-near-perfect"}
    markdown = run.file("align/leaderboard.md").read_text("utf-8")
    assert "do not test pluralism" in markdown and "shorter answer in 100%" in markdown
    html = write_report(run.path).read_text("utf-8")
    assert "do not test pluralism" in html
    assert 'alt="accuracy"' in html and "leaderboard" in html


def test_both_orders_are_scored_and_the_judge_is_a_reference_row(tmp_path: Path) -> None:
    run = planted_run(tmp_path / "run", by_religion, personas=10, train=4, seen=2, unseen=2)
    result = run_align_stage(run, FAST, embedder=HashingEmbedder())
    blind = next(r for r in result.runs if r.method == PERSONA_BLIND)
    orders = blind.predictions.group_by("pair_id").agg(pl.col("order").n_unique())
    assert orders["order"].to_list() == [2] * orders.height
    # A linear model on phi(A) - phi(B): the two orders' probabilities sum to 1.
    sums = blind.predictions.group_by("pair_id").agg(pl.col("p").sum())
    assert sums["p"].to_list() == pytest.approx([1.0] * sums.height)
    judge = _row(result.leaderboard, JUDGE, "test_seen")
    assert judge["kind"] == "reference" and judge["log_loss"] is None


def test_without_the_judge_column_the_reference_row_is_omitted_with_a_note(
    tmp_path: Path,
) -> None:
    run = planted_run(tmp_path / "run", by_religion, personas=6, train=2, seen=1, unseen=1,
                      judge=False)  # fmt: skip
    result = run_align_stage(run, FAST, embedder=HashingEmbedder())
    assert JUDGE not in set(result.leaderboard["method"])
    assert "no role-play judge row" in run.file("align/leaderboard.md").read_text("utf-8")


def test_the_seed_fixes_everything(tmp_path: Path) -> None:
    boards = []
    for name in ("a", "b"):
        run = planted_run(tmp_path / name, by_religion, personas=12, train=4, seen=2, unseen=2)
        boards.append(run_align_stage(run, FAST, embedder=HashingEmbedder()).leaderboard)
    assert boards[0].equals(boards[1])
