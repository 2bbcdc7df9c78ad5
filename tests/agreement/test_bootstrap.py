"""Bootstrap CIs: seeded, cluster-level, and honest about when no interval can be formed."""

from __future__ import annotations

import numpy as np
import pytest

from persona_testbed.agreement.bootstrap import (
    bootstrap_cohen_kappa,
    bootstrap_item_counts,
    bootstrap_mean,
    pooled_kappas,
)
from persona_testbed.agreement.statistics import (
    cohen_kappa,
    contingency_table,
    fleiss_kappa,
    kappa_from_table,
    krippendorff_alpha,
)
from persona_testbed.estimation import central_interval, resample_counts


def test_resample_weights_draw_every_cluster_count_times() -> None:
    weights = resample_counts(7, np.random.default_rng(0), 50)
    assert weights.shape == (50, 7)
    assert (weights.sum(axis=1) == 7).all()


def test_percentile_interval_ignores_nan() -> None:
    draws = np.array([np.nan, *np.linspace(0.0, 1.0, 101)])
    low, high = central_interval(draws, 0.9)
    assert low == pytest.approx(0.05) and high == pytest.approx(0.95)
    assert central_interval(np.array([np.nan])) == (None, None)


def test_bootstrap_mean_is_seeded_and_brackets_the_mean() -> None:
    values = [0.1, 0.5, 0.9, 0.4, np.nan, 0.7]
    first = bootstrap_mean(values, np.random.default_rng(1), resamples=500)
    again = bootstrap_mean(values, np.random.default_rng(1), resamples=500)
    assert first == again
    assert first.value == pytest.approx(0.52)
    assert first.n_items == 5  # the NaN is left out
    assert first.value is not None and first.low is not None and first.high is not None
    assert first.low < first.value < first.high


def test_bootstrap_mean_of_one_value_has_no_interval() -> None:
    one = bootstrap_mean([0.3], np.random.default_rng(0))
    assert one.value == pytest.approx(0.3) and one.low is None and one.high is None
    assert bootstrap_mean([], np.random.default_rng(0)).value is None


def _persona_tables(rng: np.random.Generator, personas: int, flip: float) -> list[np.ndarray]:
    tables = []
    for _ in range(personas):
        one = list(rng.choice(["A", "B"], size=10))
        two = [x if rng.random() > flip else ("B" if x == "A" else "A") for x in one]
        tables.append(contingency_table(one, two))
    return tables


def test_bootstrap_kappa_interval_narrows_with_more_personas() -> None:
    widths = []
    for personas in (8, 80):
        tables = np.stack(_persona_tables(np.random.default_rng(2), personas, 0.2))
        pooled = tables.sum(axis=0)
        labels_1 = ["A"] * int(pooled[0].sum()) + ["B"] * int(pooled[1].sum())
        labels_2 = ["A"] * int(pooled[0, 0]) + ["B"] * int(pooled[0, 1])
        labels_2 += ["A"] * int(pooled[1, 0]) + ["B"] * int(pooled[1, 1])
        point = cohen_kappa(labels_1, labels_2)
        estimate = bootstrap_cohen_kappa(tables, point, np.random.default_rng(5), resamples=400)
        assert estimate.value == pytest.approx(point.value)
        assert estimate.low is not None and estimate.high is not None
        assert estimate.low <= point.value <= estimate.high
        assert estimate.clusters == personas
        widths.append(estimate.high - estimate.low)
    assert widths[1] < widths[0]


def test_bootstrap_item_counts_for_fleiss_and_alpha() -> None:
    counts = np.array([[3, 0], [0, 3], [2, 1], [3, 0], [1, 2], [0, 3]])
    clusters = np.array([0, 0, 1, 1, 2, 2])
    for which in (fleiss_kappa, krippendorff_alpha):
        estimate = bootstrap_item_counts(
            counts, clusters, which, np.random.default_rng(0), resamples=300
        )
        assert estimate.value == pytest.approx(which(counts).value)
        assert estimate.clusters == 3
        assert estimate.low is not None and estimate.high is not None
        assert estimate.low <= estimate.high


def test_pooled_kappas_agree_with_kappa_from_table() -> None:
    rng = np.random.default_rng(4)
    tables = rng.integers(0, 6, size=(300, 2, 2))
    tables[0] = [[5, 0], [0, 0]]  # both raters always "A": undefined
    tables[1] = [[0, 0], [0, 0]]  # no items
    tables[2] = [[0, 3], [0, 0]]  # rater 1 always A, rater 2 always B: defined, kappa 0
    for policy in ("one", "nan"):
        vectorized = pooled_kappas(tables, undefined=policy)
        one_by_one = [kappa_from_table(t, undefined=policy).value for t in tables]
        np.testing.assert_allclose(vectorized, one_by_one, equal_nan=True)
