"""The verification report: the share of pairs whose persona-judge prefers y_w, per split,
with a 95% CI from the shared cluster bootstrap (persona_testbed.estimation).

Pairs are nested in personas (one role-play card judges all of a persona's pairs) and crossed
with prompts (every pair of a prompt shares its base answer y_l), so the interval resamples
personas two-way with prompts; a Wilson interval over pairs is far too narrow (docs/statistics.md).
"""

from __future__ import annotations

from typing import Any

import polars as pl

from persona_testbed.estimation import RESAMPLES, bootstrap_rate, format_ci, format_percent
from persona_testbed.preferences.sampling import SPLITS
from persona_testbed.seeding import child_rng

PAPER_NOTE = (
    "The paper reports that a GPT-4 role-playing judge prefers y_w 96% of the time; that is "
    "the paper's number, not a measurement of this run."
)
CI_METHOD = (
    f"95% CI: cluster bootstrap over personas, two-way with prompts (shared y_l), "
    f"{RESAMPLES} resamples"
)


def _summary(frame: pl.DataFrame, seed: int, name: str) -> dict[str, Any]:
    decided = frame.filter(pl.col("judge_prefers_chosen").is_not_null())
    n, wins = len(decided), int(decided["judge_prefers_chosen"].sum())
    estimate = bootstrap_rate(
        decided["judge_prefers_chosen"].cast(pl.Float64).to_numpy(),
        [1.0] * n,
        child_rng(seed, "verification-share", name),
        clusters=decided["persona_id"].to_numpy(),
        crossed=decided["prompt_id"].to_numpy(),
    )
    # Undecided pairs carry a placeholder 0.5 (no label mass): not a probability to average.
    p_values = decided["judge_p_chosen"].drop_nulls()
    return {
        "pairs": len(frame),
        "judged": n,
        "undecided": len(frame) - n,
        "prefer_chosen": wins,
        "personas": estimate.clusters,
        "prompts": estimate.crossed,
        "share_prefer_chosen": round(wins / n, 4) if n else None,
        "ci95_low": None if estimate.low is None else round(estimate.low, 4),
        "ci95_high": None if estimate.high is None else round(estimate.high, 4),
        "mean_p_chosen": round(float(p_values.to_numpy().mean()), 4) if len(p_values) else None,
    }


CONSTRAINED_NOTE = (
    "constrained: the endpoint returns no log-probabilities, so in each order the judge named "
    "one label under a JSON schema; P(y_w) is 0, 0.5 (the orders disagree: undecided) or 1"
)


def choice_methods(frame: pl.DataFrame) -> dict[str, int]:
    """Judged pairs per choice method (logprobs / constrained); empty for older outputs."""
    if "judge_method" not in frame.columns:
        return {}
    counts = frame["judge_method"].drop_nulls().value_counts(sort=True)
    return {str(m): int(n) for m, n in counts.iter_rows()}


def verification_report(frame: pl.DataFrame, judge_model: str, seed: int = 0) -> dict[str, Any]:
    """Per split and overall; `undecided` pairs (no label mass, or exactly 0.5) are left out
    of the share and counted separately. `frame` needs persona_id and prompt_id (the
    bootstrap's clusters), split, judge_prefers_chosen and judge_p_chosen (and, when present,
    judge_method: how many pairs each choice method scored)."""
    methods = choice_methods(frame)
    constrained = f"; {CONSTRAINED_NOTE}" if methods.get("constrained") else ""
    return {
        "judge_model": judge_model,
        "method": "role-played persona picks y_w vs y_l; both orders averaged; "
        f"prefers y_w when P(y_w) > 0.5; {CI_METHOD}{constrained}",
        "choice_methods": methods,
        "splits": {s: _summary(frame.filter(pl.col("split") == s), seed, s) for s in SPLITS},
        "overall": _summary(frame, seed, "all"),
        "paper_reference": PAPER_NOTE,
    }


def verification_markdown(report: dict[str, Any]) -> str:
    methods = report.get("choice_methods") or {}
    scored = ", ".join(f"{method} {count}" for method, count in methods.items())
    lines = [
        f"Judge: `{report['judge_model']}` ({report['method']}; docs/statistics.md).",
        *(["", f"Choices scored by: {scored} (pairs)."] if scored else []),
        "",
        "| split | pairs | judged | prefer y_w | share | 95% CI | mean P(y_w) | personas |",
        "|---|---|---|---|---|---|---|---|",
    ]
    rows = [*report["splits"].items(), ("all", report["overall"])]
    for name, s in rows:
        ci = format_ci(s["ci95_low"], s["ci95_high"])
        mean = "n/a" if s["mean_p_chosen"] is None else f"{s['mean_p_chosen']:.3f}"
        lines.append(
            f"| {name} | {s['pairs']} | {s['judged']} | {s['prefer_chosen']} | "
            f"{format_percent(s['share_prefer_chosen'])} | {ci} | {mean} | {s['personas']} |"
        )
    lines += ["", report["paper_reference"], ""]
    return "\n".join(lines)
