"""How every CI is written in reports and terminal output: `[low, high]` after the value; and
the one Markdown table writer of the reports' tables."""

from __future__ import annotations

import polars as pl


def format_percent(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{100 * value:.{digits}f}%"


def format_ci(low: float | None, high: float | None, *, percent: bool = True) -> str:
    """'[low, high]' as percentages (or 3-decimal numbers); 'n/a' without an interval."""
    if low is None or high is None:
        return "n/a"
    if percent:
        return f"[{format_percent(low)}, {format_percent(high)}]"
    return f"[{low:.3f}, {high:.3f}]"


def format_estimate(
    value: float | None, low: float | None, high: float | None, *, percent: bool = False
) -> str:
    """'value [low, high]' (3-decimal numbers, or percentages); the value alone without an
    interval; 'n/a' without a value."""
    if value is None:
        return "n/a"
    text = format_percent(value) if percent else f"{value:.3f}"
    if low is None or high is None:
        return text
    return f"{text} {format_ci(low, high, percent=percent)}"


def markdown_table(frame: pl.DataFrame) -> str:
    """A GitHub Markdown table of a frame (every cell as text, floats to 3 decimals)."""
    rounded = frame.with_columns(pl.col(pl.Float32, pl.Float64).round(3))
    text = rounded.select(pl.all().cast(pl.String).fill_null("-"))
    with pl.Config(
        tbl_formatting="ASCII_MARKDOWN",
        tbl_hide_column_data_types=True,
        tbl_hide_dataframe_shape=True,
        tbl_rows=-1,
        tbl_cols=-1,
        tbl_width_chars=10_000,
        fmt_str_lengths=10_000,
        tbl_cell_numeric_alignment="RIGHT",
    ):
        return str(text) + "\n"
