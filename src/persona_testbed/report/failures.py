"""The report's "generation failures and truncations per step" table, from the manifest.

Every generation step files a tally under `stats["generation"]` of its stage record
(llm.generation.failure_tally): outputs, first replies retried (truncated at the token limit,
empty, ...), and rows still failed after the retry (never judged, never exported).
"""

from __future__ import annotations

from typing import Any

import polars as pl

from persona_testbed.llm.generation import STATS_KEY
from persona_testbed.report.sections import Section, TableView, table_view
from persona_testbed.run import RunDir

TITLE = "generation failures and truncations per step"


def _reasons(counts: Any) -> str:
    if not isinstance(counts, dict) or not counts:
        return ""
    return ", ".join(f"{reason} {count}" for reason, count in sorted(counts.items()))


def failures_frame(run: RunDir, stages: list[str]) -> pl.DataFrame:
    """One row per (stage, step) that generated text."""
    rows: list[dict[str, Any]] = []
    manifest = run.load_manifest()
    for name in stages:
        record = manifest.stages.get(name)
        steps = (record.stats.get(STATS_KEY) if record is not None else None) or {}
        for step, tally in steps.items():
            if not isinstance(tally, dict):
                continue
            retried = tally.get("retried_by_reason") or {}
            rows.append(
                {
                    "stage": name,
                    "step": step,
                    "outputs": int(tally.get("outputs", 0)),
                    "truncated at first try": int(retried.get("truncated", 0)),
                    "retried (any reason)": int(tally.get("retried", 0)),
                    "failed after retry": int(tally.get("failed", 0)),
                    "failures by reason": _reasons(tally.get("by_reason")),
                    "retries by reason": _reasons(retried),
                }
            )
    schema = {
        "stage": pl.String,
        "step": pl.String,
        "outputs": pl.Int64,
        "truncated at first try": pl.Int64,
        "retried (any reason)": pl.Int64,
        "failed after retry": pl.Int64,
        "failures by reason": pl.String,
        "retries by reason": pl.String,
    }
    # The steps that lost the most rows first.
    frame = pl.DataFrame(rows, schema=schema)
    return frame.sort(
        ["failed after retry", "retried (any reason)"], descending=True, maintain_order=True
    )


def failures_table(run: RunDir, stages: list[str]) -> TableView | None:
    frame = failures_frame(run, stages)
    return None if frame.is_empty() else table_view(TITLE, frame)


def add_failures_table(run: RunDir, section: Section) -> None:
    """Append the table for the section's stages (nothing when none of them generated text)."""
    table = failures_table(run, section.stages)
    if table is not None:
        section.tables.append(table)
