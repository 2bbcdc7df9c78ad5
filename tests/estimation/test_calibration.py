"""Simulation calibration: over 500 data sets with a planted truth and the clustering of the
real artifacts, each printed 95% interval covers the truth 92-98% of the time, while the Wilson
interval over pairs (the verification CI before issue 13) and a persona-only bootstrap where
prompts are shared do not. `python -m tests.estimation.test_calibration` prints the table that
docs/statistics.md quotes.

Each data set: 40 personas x 20 pairs, crossed with 40 prompts (simulation.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
from scipy.stats import multivariate_normal, norm

from persona_testbed.bench.passk import pass_at_k
from persona_testbed.estimation import (
    Estimate,
    Floats,
    bootstrap_mean,
    bootstrap_rate,
    bootstrap_statistic,
)
from persona_testbed.estimation.bootstrap import wilson_interval
from tests.estimation.simulation import DataSet, Design, simulate

SIMULATIONS = 500
# Fewer resamples than a run uses (2000) keep the test quick; they estimate the same variance.
RESAMPLES = 400
BAND = (0.92, 0.98)

Interval = Callable[[DataSet, np.random.Generator], Estimate]

# Verification: one judged pair per row, 95% prefer y_w, pairs of a prompt share y_l.
VERIFICATION = Design(persona_var=0.2, prompt_var=0.1)
SHARE = 0.95
# Prompts that matter more than personas: the case the two-way resampling is for.
STRONG_PROMPTS = Design(persona_var=0.1, prompt_var=0.25)
# Bench: 3 samples per pair sharing a pair effect, personas crossed with questions.
BENCH = Design(samples_per_pair=3, persona_var=0.15, prompt_var=0.1, pair_var=0.2)
ACCURACY, WITHOUT_ATTRIBUTE = 0.6, 0.5
# Summary drops / per-persona agreement: personas only, a low rate.
NESTED = Design(persona_var=0.25, prompt_var=0.0, samples_per_pair=2, pair_var=0.1)
DROP_RATE = 0.2


def coverage(design: Design, truth: float, interval: Interval, seed: int = 13) -> float:
    """Share of simulated data sets whose interval contains `truth`."""
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(SIMULATIONS):
        estimate = interval(simulate(design, rng), rng)
        assert estimate.low is not None and estimate.high is not None
        hits += estimate.low <= truth <= estimate.high
    return hits / SIMULATIONS


def two_way_rate(rate: float) -> Interval:
    def interval(data: DataSet, rng: np.random.Generator) -> Estimate:
        return bootstrap_rate(
            data.successes(rate),
            data.trials,
            rng,
            clusters=data.persona,
            crossed=data.prompt,
            resamples=RESAMPLES,
        )

    return interval


def persona_only_rate(rate: float) -> Interval:
    def interval(data: DataSet, rng: np.random.Generator) -> Estimate:
        return bootstrap_rate(
            data.successes(rate), data.trials, rng, clusters=data.persona, resamples=RESAMPLES
        )

    return interval


def old_wilson_over_pairs(data: DataSet, _: np.random.Generator) -> Estimate:
    """The verification CI before issue 13: pairs treated as independent."""
    low, high = wilson_interval(float(data.successes(SHARE).sum()), float(data.trials.sum()))
    return Estimate(None, low, high, 0)


def pass_at_2(data: DataSet, rng: np.random.Generator) -> Estimate:
    values = [pass_at_k(3, int(s), 2) for s in data.successes(ACCURACY)]
    return bootstrap_mean(
        values,
        rng,
        clusters=data.persona,
        crossed=data.prompt,
        scale="logit",
        resamples=RESAMPLES,
    )


def pass_at_2_truth() -> float:
    """1 - P(two samples of a pair both fail): their latent correlation is the variance they
    share, so this is a bivariate normal probability."""
    c, rho = norm.ppf(1.0 - ACCURACY), BENCH.shared_var
    return 1.0 - float(multivariate_normal(cov=[[1.0, rho], [rho, 1.0]]).cdf([c, c]))


def _delta(sums: dict[str, Floats]) -> Floats:
    result: Floats = sums["s_loo"] / sums["t"] - sums["s_full"] / sums["t"]
    return result


def loo_delta(data: DataSet, rng: np.random.Generator) -> Estimate:
    """Leave-one-attribute-out: the same pairs with the attribute and without it, from the
    same latent draw (paired)."""
    return bootstrap_statistic(
        {
            "s_full": data.successes(ACCURACY),
            "s_loo": data.successes(WITHOUT_ATTRIBUTE),
            "t": data.trials,
        },
        _delta,
        rng,
        clusters=data.persona,
        crossed=data.prompt,
        resamples=RESAMPLES,
    )


@dataclass(frozen=True)
class Case:
    design: Design
    truth: Callable[[], float]
    interval: Interval
    calibrated: bool  # False: a defective interval that must undercover


CASES = {
    "verification share (two-way)": Case(VERIFICATION, lambda: SHARE, two_way_rate(SHARE), True),
    "old: Wilson over pairs": Case(VERIFICATION, lambda: SHARE, old_wilson_over_pairs, False),
    "share, strong prompt effect (two-way)": Case(
        STRONG_PROMPTS, lambda: SHARE, two_way_rate(SHARE), True
    ),
    "old: share, strong prompt effect, personas only": Case(
        STRONG_PROMPTS, lambda: SHARE, persona_only_rate(SHARE), False
    ),
    "bench accuracy (two-way)": Case(BENCH, lambda: ACCURACY, two_way_rate(ACCURACY), True),
    "bench pass@2 (two-way)": Case(BENCH, pass_at_2_truth, pass_at_2, True),
    "bench LOO delta (two-way)": Case(BENCH, lambda: WITHOUT_ATTRIBUTE - ACCURACY, loo_delta, True),
    "drop rate / nested rate (personas)": Case(
        NESTED, lambda: DROP_RATE, persona_only_rate(DROP_RATE), True
    ),
}


@pytest.mark.parametrize("key", list(CASES))
def test_interval_coverage(key: str) -> None:
    case = CASES[key]
    measured = coverage(case.design, case.truth(), case.interval)
    if case.calibrated:
        assert BAND[0] <= measured <= BAND[1], measured
    else:
        assert measured < 0.9, measured


if __name__ == "__main__":
    print(f"| interval | truth | coverage ({SIMULATIONS} data sets, {RESAMPLES} resamples) |")
    print("|---|---|---|")
    for key, case in CASES.items():
        truth = case.truth()
        print(f"| {key} | {truth:.3f} | {coverage(case.design, truth, case.interval):.3f} |")
