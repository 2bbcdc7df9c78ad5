"""The leaderboard (CSV with numbers, Markdown with CIs) and Markdown renderings of tables."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl

from persona_testbed.bench.metrics import MethodMetrics
from persona_testbed.estimation import format_estimate, markdown_table


def leaderboard_frame(metrics: Sequence[MethodMetrics], k: int) -> pl.DataFrame:
    """One row per (model, method): accuracy with CI, pass@1..k, subtlety-flag rate, counts."""
    rows: list[dict[str, Any]] = []
    for m in metrics:
        row: dict[str, Any] = {
            "model": m.model,
            "judge_model": m.judge_model,
            "method": m.method,
            "accuracy": m.accuracy.value,
            "ci_low": m.accuracy.low,
            "ci_high": m.accuracy.high,
            "pairs": m.pairs,
            "samples": m.samples,
            "valid_verdicts": m.accuracy.trials,
            "verdict_errors": m.verdict_errors,
            "answer_parse_errors": m.answer_parse_errors,
            "generation_failures": m.generation_failures,
            "accuracy_failures_counted": m.accuracy_failures_counted.value,
            "failures_counted_ci_low": m.accuracy_failures_counted.low,
            "failures_counted_ci_high": m.accuracy_failures_counted.high,
            "not_subtle_rate": m.not_subtle.value,
            "not_subtle_ci_low": m.not_subtle.low,
            "not_subtle_ci_high": m.not_subtle.high,
        }
        for j in range(1, k + 1):
            estimate = m.pass_at.get(j)
            row[f"pass@{j}"] = None if estimate is None else estimate.value
        rows.append(row)
    schema: dict[str, Any] = {
        "model": pl.String,
        "judge_model": pl.String,
        "method": pl.String,
        "accuracy": pl.Float64,
        "ci_low": pl.Float64,
        "ci_high": pl.Float64,
        "pairs": pl.Int64,
        "samples": pl.Int64,
        "valid_verdicts": pl.Int64,
        "verdict_errors": pl.Int64,
        "answer_parse_errors": pl.Int64,
        "generation_failures": pl.Int64,
        "accuracy_failures_counted": pl.Float64,
        "failures_counted_ci_low": pl.Float64,
        "failures_counted_ci_high": pl.Float64,
        "not_subtle_rate": pl.Float64,
        "not_subtle_ci_low": pl.Float64,
        "not_subtle_ci_high": pl.Float64,
        **{f"pass@{j}": pl.Float64 for j in range(1, k + 1)},
    }
    return pl.DataFrame(rows, schema=schema)


def _fmt(value: float | None) -> str:
    return format_estimate(value, None, None)


def leaderboard_markdown(
    leaderboard: pl.DataFrame, k: int, *, title: str, notes: Sequence[str] = ()
) -> str:
    pass_columns = [f"pass@{j}" for j in range(1, k + 1)]
    shown = leaderboard.select(
        "model",
        "method",
        pl.struct("accuracy", "ci_low", "ci_high")
        .map_elements(
            lambda r: format_estimate(r["accuracy"], r["ci_low"], r["ci_high"]),
            return_dtype=pl.String,
        )
        .alias("accuracy [95% CI]"),
        pl.struct(
            "accuracy_failures_counted", "failures_counted_ci_low", "failures_counted_ci_high"
        )
        .map_elements(
            lambda r: format_estimate(
                r["accuracy_failures_counted"],
                r["failures_counted_ci_low"],
                r["failures_counted_ci_high"],
            ),
            return_dtype=pl.String,
        )
        .alias("accuracy, failures counted [95% CI]"),
        *(
            pl.col(c).map_elements(_fmt, return_dtype=pl.String, skip_nulls=False)
            for c in pass_columns
        ),
        pl.struct("not_subtle_rate", "not_subtle_ci_low", "not_subtle_ci_high")
        .map_elements(
            lambda r: format_estimate(
                r["not_subtle_rate"], r["not_subtle_ci_low"], r["not_subtle_ci_high"]
            ),
            return_dtype=pl.String,
        )
        .alias("not subtle [95% CI]"),
        "pairs",
        "valid_verdicts",
        "verdict_errors",
        "generation_failures",
        "answer_parse_errors",
    )
    judges = ", ".join(leaderboard.get_column("judge_model").unique(maintain_order=True))
    lines = [f"# {title}", "", f"Judge: {judges}.", ""]
    lines.append(markdown_table(shown))
    lines += [f"- {note}" for note in notes]
    return "\n".join(lines).rstrip() + "\n"
