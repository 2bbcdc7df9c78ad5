"""How every CI is written in reports and terminal output: `[low, high]` after the value."""

from __future__ import annotations


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
