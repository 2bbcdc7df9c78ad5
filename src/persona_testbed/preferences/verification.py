"""The verification report: the share of pairs whose persona-judge prefers y_w, per split,
with a Wilson 95% confidence interval."""

from __future__ import annotations

from typing import Any

import polars as pl

from persona_testbed.preferences.sampling import SPLITS

PAPER_NOTE = (
    "The paper reports that a GPT-4 role-playing judge prefers y_w 96% of the time; that is "
    "the paper's number, not a measurement of this run."
)


def wilson_interval(successes: int, n: int, alpha: float = 0.05) -> tuple[float, float] | None:
    if n == 0:
        return None
    from statsmodels.stats.proportion import proportion_confint

    low, high = proportion_confint(successes, n, alpha=alpha, method="wilson")
    return float(low), float(high)


def _summary(frame: pl.DataFrame) -> dict[str, Any]:
    decided = frame.filter(pl.col("judge_prefers_chosen").is_not_null())
    n, wins = len(decided), int(decided["judge_prefers_chosen"].sum())
    interval = wilson_interval(wins, n)
    p_values = frame["judge_p_chosen"].drop_nulls()
    return {
        "pairs": len(frame),
        "judged": n,
        "undecided": len(frame) - n,
        "prefer_chosen": wins,
        "share_prefer_chosen": round(wins / n, 4) if n else None,
        "ci95_low": round(interval[0], 4) if interval else None,
        "ci95_high": round(interval[1], 4) if interval else None,
        "mean_p_chosen": round(float(p_values.to_numpy().mean()), 4) if len(p_values) else None,
    }


def verification_report(frame: pl.DataFrame, judge_model: str) -> dict[str, Any]:
    """Per split and overall; `undecided` pairs (no label mass, or exactly 0.5) are left out
    of the share and counted separately."""
    return {
        "judge_model": judge_model,
        "method": "role-played persona picks y_w vs y_l; both orders averaged; "
        "prefers y_w when P(y_w) > 0.5; Wilson 95% CI",
        "splits": {s: _summary(frame.filter(pl.col("split") == s)) for s in SPLITS},
        "overall": _summary(frame),
        "paper_reference": PAPER_NOTE,
    }


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def verification_markdown(report: dict[str, Any]) -> str:
    lines = [
        f"Judge: `{report['judge_model']}` ({report['method']}).",
        "",
        "| split | pairs | judged | prefer y_w | share | 95% CI (Wilson) | mean P(y_w) |",
        "|---|---|---|---|---|---|---|",
    ]
    rows = [*report["splits"].items(), ("all", report["overall"])]
    for name, s in rows:
        ci = (
            "n/a"
            if s["ci95_low"] is None
            else f"{_percent(s['ci95_low'])} - {_percent(s['ci95_high'])}"
        )
        mean = "n/a" if s["mean_p_chosen"] is None else f"{s['mean_p_chosen']:.3f}"
        lines.append(
            f"| {name} | {s['pairs']} | {s['judged']} | {s['prefer_chosen']} | "
            f"{_percent(s['share_prefer_chosen'])} | {ci} | {mean} |"
        )
    lines += ["", report["paper_reference"], ""]
    return "\n".join(lines)
