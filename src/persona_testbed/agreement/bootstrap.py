"""Percentile-bootstrap confidence intervals that resample clusters (personas, LOO pairs).

Labels of one persona are correlated (same role-play card), so the unit resampled is the
persona, never the single item; the statistic is recomputed on every resample.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from persona_testbed.agreement.statistics import (
    Agreement,
    Counts,
    UndefinedPolicy,
    kappa_from_table,
)
from persona_testbed.resampling import Floats, central_interval, draw_clusters

RESAMPLES = 1000
LEVEL = 0.95


@dataclass(frozen=True)
class Estimate:
    """A point estimate, its percentile-bootstrap CI (None when it cannot be formed) and how
    many items and clusters it rests on."""

    value: float | None
    low: float | None
    high: float | None
    n_items: int
    clusters: int
    degenerate: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {k: (_rounded(v) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def _rounded(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 6)


def _finite(value: float) -> float | None:
    return None if math.isnan(value) else value


def percentile_interval(draws: Floats, level: float = LEVEL) -> tuple[float | None, float | None]:
    """Central `level` interval of the finite draws (None when no draw is finite)."""
    finite = draws[np.isfinite(draws)]
    if finite.size == 0:
        return None, None
    return central_interval(finite, level)


def resample_weights(clusters: int, rng: np.random.Generator, resamples: int) -> Counts:
    """resamples x clusters: how many times each cluster is drawn in each resample."""
    draws = draw_clusters(clusters, rng, resamples)
    return np.stack([np.bincount(row, minlength=clusters) for row in draws]).astype(np.int64)


def bootstrap_mean(
    values: Sequence[float],
    rng: np.random.Generator,
    *,
    resamples: int = RESAMPLES,
    level: float = LEVEL,
) -> Estimate:
    """Mean of per-cluster values (NaN left out) with a CI from resampling the clusters."""
    array = np.asarray(values, dtype=np.float64)
    finite = array[np.isfinite(array)]
    if finite.size == 0:
        return Estimate(None, None, None, 0, 0)
    draws = finite[draw_clusters(finite.size, rng, resamples)].mean(axis=1)
    low, high = percentile_interval(draws, level) if finite.size > 1 else (None, None)
    return Estimate(float(finite.mean()), low, high, int(finite.size), int(finite.size))


def _bootstrap(
    point: Agreement,
    clusters: int,
    statistic: Callable[[Counts], float],
    rng: np.random.Generator,
    resamples: int,
    level: float,
) -> Estimate:
    if clusters < 2 or not point.defined:
        return Estimate(_finite(point.value), None, None, point.n_items, clusters, point.degenerate)
    weights = resample_weights(clusters, rng, resamples)
    draws = np.fromiter((statistic(w) for w in weights), dtype=np.float64, count=resamples)
    low, high = percentile_interval(draws, level)
    return Estimate(point.value, low, high, point.n_items, clusters, point.degenerate)


def bootstrap_cohen_kappa(
    tables: Counts,
    point: Agreement,
    rng: np.random.Generator,
    *,
    undefined: UndefinedPolicy = "one",
    resamples: int = RESAMPLES,
    level: float = LEVEL,
) -> Estimate:
    """CI of the pooled Cohen's kappa from per-cluster 2x2 tables (clusters x 2 x 2)."""

    def statistic(weights: Counts) -> float:
        pooled = np.tensordot(weights, tables, axes=1)
        return kappa_from_table(pooled, undefined=undefined).value

    return _bootstrap(point, tables.shape[0], statistic, rng, resamples, level)


def bootstrap_item_counts(
    counts: Counts,
    cluster_of_item: npt.NDArray[np.int64],
    which: Callable[..., Agreement],
    rng: np.random.Generator,
    *,
    undefined: UndefinedPolicy = "one",
    resamples: int = RESAMPLES,
    level: float = LEVEL,
) -> Estimate:
    """Fleiss' kappa or Krippendorff's alpha (`which`) on items x categories counts, with a CI
    from resampling the clusters the items belong to (`cluster_of_item`, codes 0..k-1)."""
    point = which(counts, undefined=undefined)
    clusters = int(cluster_of_item.max()) + 1 if cluster_of_item.size else 0

    def statistic(weights: Counts) -> float:
        repeated = np.repeat(counts, weights[cluster_of_item], axis=0)
        return float(which(repeated, undefined=undefined).value)

    return _bootstrap(point, clusters, statistic, rng, resamples, level)
