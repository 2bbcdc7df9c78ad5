"""Bootstrap CIs on inputs whose answer is known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from persona_testbed.bench.stats import bootstrap_mean, bootstrap_paired, bootstrap_rate
from persona_testbed.resampling import Floats


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def test_all_pass_gives_a_degenerate_interval_at_one() -> None:
    estimate = bootstrap_rate([4] * 30, [4] * 30, rng())
    assert (estimate.value, estimate.low, estimate.high) == (1.0, 1.0, 1.0)
    assert (estimate.successes, estimate.trials, estimate.clusters) == (120, 120, 30)


def test_one_pair_gives_no_interval() -> None:
    estimate = bootstrap_rate([3], [4], rng())
    assert (estimate.value, estimate.low, estimate.high) == (0.75, None, None)
    assert bootstrap_mean([0.5], rng()).low is None


def test_no_trials_gives_no_estimate() -> None:
    estimate = bootstrap_rate([0, 0], [0, 0], rng())
    assert estimate.value is None and estimate.low is None and estimate.trials == 0


def test_known_proportion_is_covered_with_normal_approximation_width() -> None:
    n = 2000
    passes = np.zeros(n)
    passes[: int(0.3 * n)] = 1  # exactly 30%
    estimate = bootstrap_rate(passes, np.ones(n), rng(1))
    assert estimate.value == pytest.approx(0.3)
    assert estimate.low is not None and estimate.high is not None
    assert estimate.low < 0.3 < estimate.high
    normal_half_width = 1.96 * math.sqrt(0.3 * 0.7 / n)
    assert (estimate.high - estimate.low) / 2 == pytest.approx(normal_half_width, rel=0.15)


def test_clustered_samples_widen_the_interval() -> None:
    # 200 pairs x 4 samples; samples of a pair agree. Resampling pairs must give the width of
    # 200 observations, not of 800.
    pairs = 200
    passes = np.array([4 if i % 2 else 0 for i in range(pairs)])
    estimate = bootstrap_rate(passes, np.full(pairs, 4), rng(2))
    assert estimate.low is not None and estimate.high is not None
    half = (estimate.high - estimate.low) / 2
    assert half == pytest.approx(1.96 * math.sqrt(0.25 / pairs), rel=0.15)
    assert half > 1.5 * 1.96 * math.sqrt(0.25 / (4 * pairs))


def test_same_seed_same_interval_and_pairs_without_trials_carry_no_weight() -> None:
    a = bootstrap_rate([1, 0, 2, 0], [2, 0, 2, 1], rng(5))
    b = bootstrap_rate([1, 0, 2], [2, 0, 2], rng(5))
    assert a.value == pytest.approx(3 / 5)
    assert a.clusters == 3
    assert a == bootstrap_rate([1, 0, 2, 0], [2, 0, 2, 1], rng(5))
    assert b.value == pytest.approx(3 / 4)


def test_bootstrap_mean_and_paired_difference() -> None:
    mean = bootstrap_mean([0.0, 1.0] * 500, rng(3))
    assert mean.value == pytest.approx(0.5)
    assert mean.low is not None and mean.high is not None and mean.low < 0.5 < mean.high
    assert bootstrap_mean([], rng()).value is None

    # Paired: the second rate is always the first minus 0.25 on every pair -> tight interval.
    t = np.full(100, 4.0)
    s_full = np.tile([4.0, 2.0], 50)
    s_loo = s_full - 1.0

    def delta(sums: dict[str, Floats]) -> Floats:
        result: Floats = sums["s_loo"] / sums["t"] - sums["s_full"] / sums["t"]
        return result

    estimate = bootstrap_paired({"s_full": s_full, "s_loo": s_loo, "t": t}, delta, rng(4))
    assert estimate.value == pytest.approx(-0.25)
    assert estimate.low == pytest.approx(-0.25) and estimate.high == pytest.approx(-0.25)
