"""The shared estimators on inputs whose answer is known (calibration is test_calibration.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from persona_testbed.estimation import (
    Floats,
    bootstrap_mean,
    bootstrap_rate,
    bootstrap_statistic,
    format_ci,
    format_estimate,
)
from persona_testbed.estimation.bootstrap import wilson_interval


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def test_all_pass_gets_the_wilson_interval_over_personas_not_zero_width() -> None:
    estimate = bootstrap_rate([4] * 30, [4] * 30, rng())
    assert (estimate.value, estimate.high) == (1.0, 1.0)
    # No variation to resample: the most clustered case, one observation per persona.
    assert estimate.low == pytest.approx(wilson_interval(30, 30)[0])
    assert estimate.low is not None and estimate.low < 0.9
    assert (estimate.successes, estimate.trials, estimate.clusters) == (120, 120, 30)


def test_one_cluster_gives_no_interval() -> None:
    estimate = bootstrap_rate([3], [4], rng())
    assert (estimate.value, estimate.low, estimate.high) == (0.75, None, None)
    assert bootstrap_mean([0.5], rng()).low is None
    # Many rows of one persona are still one cluster.
    one_persona = bootstrap_rate([1, 0, 1], [1, 1, 1], rng(), clusters=["p", "p", "p"])
    assert one_persona.low is None and one_persona.clusters == 1


def test_no_trials_gives_no_estimate() -> None:
    estimate = bootstrap_rate([0, 0], [0, 0], rng())
    assert estimate.value is None and estimate.low is None and estimate.trials == 0


def test_independent_rows_give_the_binomial_width() -> None:
    n = 2000
    passes = np.zeros(n)
    passes[: int(0.3 * n)] = 1  # exactly 30%
    estimate = bootstrap_rate(passes, np.ones(n), rng(1))
    assert estimate.value == pytest.approx(0.3)
    assert estimate.low is not None and estimate.high is not None
    assert estimate.low < 0.3 < estimate.high
    normal_half_width = 1.96 * math.sqrt(0.3 * 0.7 / n)
    assert (estimate.high - estimate.low) / 2 == pytest.approx(normal_half_width, rel=0.1)


def test_pairs_of_one_persona_are_resampled_together() -> None:
    # 100 personas x 4 pairs; a persona's pairs all pass or all fail. Resampling personas must
    # give the width of 100 observations, not of 400.
    personas = np.repeat(np.arange(100), 4)
    passes = (personas % 2).astype(float)
    nested = bootstrap_rate(passes, np.ones(400), rng(2), clusters=personas)
    naive = bootstrap_rate(passes, np.ones(400), rng(2))
    assert nested.clusters == 100 and naive.clusters == 400
    assert nested.low is not None and nested.high is not None
    assert naive.low is not None and naive.high is not None
    half = (nested.high - nested.low) / 2
    assert half == pytest.approx(1.98 * math.sqrt(0.25 / 100), rel=0.1)
    assert half > 1.8 * (naive.high - naive.low) / 2


def test_a_shared_prompt_effect_widens_the_crossed_interval() -> None:
    # 60 personas each answer all 6 prompts; the outcome is set by the prompt alone (3 easy,
    # 3 hard). Personas look alike, so resampling them alone sees no uncertainty about which
    # prompts were drawn; crossing with prompts does.
    personas = np.repeat(np.arange(60), 6)
    prompts = np.tile(np.arange(6), 60)
    passes = (prompts < 3).astype(float)
    one_way = bootstrap_rate(passes, np.ones(360), rng(3), clusters=personas)
    two_way = bootstrap_rate(passes, np.ones(360), rng(3), clusters=personas, crossed=prompts)
    assert two_way.crossed == 6 and one_way.crossed is None
    assert one_way.low == one_way.high == 0.5  # every persona has the same rate
    assert two_way.low is not None and two_way.high is not None
    assert two_way.high - two_way.low > 0.4


def test_same_seed_same_interval_and_rows_without_trials_carry_no_weight() -> None:
    a = bootstrap_rate([1, 0, 2, 0], [2, 0, 2, 1], rng(5))
    b = bootstrap_rate([1, 0, 2], [2, 0, 2], rng(5))
    assert a.value == pytest.approx(3 / 5)
    assert a.clusters == 3
    assert a == bootstrap_rate([1, 0, 2, 0], [2, 0, 2, 1], rng(5))
    assert b.value == pytest.approx(3 / 4)
    # Cluster ids are filtered with the rows: the dropped row's persona disappears.
    c = bootstrap_rate([1, 0, 2, 0], [2, 0, 2, 1], rng(5), clusters=["x", "y", "x", "z"])
    assert c.clusters == 2


def test_mean_and_paired_difference() -> None:
    mean = bootstrap_mean([0.0, 1.0] * 500, rng(3))
    assert mean.value == pytest.approx(0.5)
    assert mean.low is not None and mean.high is not None and mean.low < 0.5 < mean.high
    assert bootstrap_mean([], rng()).value is None
    assert bootstrap_mean([0.2, math.nan, 0.4], rng()).clusters == 2

    # Paired: the second rate is always the first minus 0.25 on every pair -> zero width.
    t = np.full(100, 4.0)
    s_full = np.tile([4.0, 2.0], 50)
    s_loo = s_full - 1.0

    def delta(sums: dict[str, Floats]) -> Floats:
        result: Floats = sums["s_loo"] / sums["t"] - sums["s_full"] / sums["t"]
        return result

    estimate = bootstrap_statistic({"s_full": s_full, "s_loo": s_loo, "t": t}, delta, rng(4))
    assert estimate.value == pytest.approx(-0.25)
    assert estimate.low == pytest.approx(-0.25) and estimate.high == pytest.approx(-0.25)


def test_wilson_interval_matches_the_formula() -> None:
    z = 1.959963984540054
    p, n = 0.8, 10
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    assert wilson_interval(8, 10) == pytest.approx((centre - half, centre + half))


def test_formatting() -> None:
    assert format_ci(0.123, 0.4567) == "[12.3%, 45.7%]"
    assert format_ci(None, 0.4) == "n/a"
    assert format_ci(-0.05, 0.1, percent=False) == "[-0.050, 0.100]"
    assert format_estimate(0.5, 0.4, 0.6, percent=True) == "50.0% [40.0%, 60.0%]"
    assert format_estimate(None, None, None) == "n/a"
    assert format_estimate(0.5, 0.4, 0.6) == "0.500 [0.400, 0.600]"
    assert format_estimate(0.5, None, None) == "0.500"  # no interval: the value alone
