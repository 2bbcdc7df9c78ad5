"""The leaderboard as Markdown: the table, the pluralism diagnostic, and the notes."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from persona_testbed.align.evaluate import Diagnostic
from persona_testbed.estimation import format_estimate, markdown_table


def _estimate(row: dict[str, object], value: str, low: str, high: str) -> str:
    v, lo, hi = row.get(value), row.get(low), row.get(high)
    number = (int, float)
    return format_estimate(
        float(v) if isinstance(v, number) else None,
        float(lo) if isinstance(lo, number) else None,
        float(hi) if isinstance(hi, number) else None,
    )


def _cell(text: object) -> str:
    return "-" if text is None or text == "" else str(text).replace("|", "/").replace("\n", " ")


def leaderboard_markdown(
    board: pl.DataFrame,
    diagnostics: Sequence[Diagnostic],
    *,
    title: str,
    notes: Sequence[str] = (),
) -> str:
    """The leaderboard table (value [95% CI] cells), then the diagnostic, then the notes."""
    cells = [
        {
            "split": row["split"],
            "method": row["method"],
            "kind": row["kind"],
            "pairs": str(row["pairs"]),
            "personas": str(row["personas"]),
            "accuracy": _estimate(row, "accuracy", "ci_low", "ci_high"),
            "log-loss": _estimate(row, "log_loss", "log_loss_ci_low", "log_loss_ci_high"),
            "gap vs persona-blind": _estimate(row, "gap", "gap_ci_low", "gap_ci_high"),
            "note": _cell(row["note"]),
        }
        for row in board.iter_rows(named=True)
    ]
    table = pl.DataFrame(cells, schema=dict.fromkeys(cells[0], pl.String)) if cells else None
    lines = [f"# {title}", ""]
    lines += [markdown_table(table).rstrip("\n")] if table is not None else ["(no rows)"]
    lines += ["", "## Does this data test pluralism?", ""]
    lines += [f"- {d.sentence}" for d in diagnostics]
    if notes:
        lines += ["", "## Notes", ""] + [f"- {note}" for note in notes]
    return "\n".join(lines) + "\n"
