"""How every CI is written in reports and terminal output."""

from __future__ import annotations

from persona_testbed.estimation.bootstrap import Estimate


def format_percent(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{100 * value:.{digits}f}%"


def format_ci(low: float | None, high: float | None, *, percent: bool = True) -> str:
    """'[low, high]' as percentages (or 3-decimal numbers); 'n/a' without an interval."""
    if low is None or high is None:
        return "n/a"
    if percent:
        return f"[{format_percent(low)}, {format_percent(high)}]"
    return f"[{low:.3f}, {high:.3f}]"


def format_estimate(estimate: Estimate, *, percent: bool = True) -> str:
    """'value [low, high]'."""
    if estimate.value is None:
        return "n/a"
    value = format_percent(estimate.value) if percent else f"{estimate.value:.3f}"
    return f"{value} {format_ci(estimate.low, estimate.high, percent=percent)}"
