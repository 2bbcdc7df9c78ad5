"""Rates with bootstrap 95% confidence intervals.

Samples of one (persona, question) pair are correlated, so the bootstrap resamples pairs (the
clusters), never single samples; with one sample per pair this is the ordinary bootstrap.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from persona_testbed.resampling import Floats, central_interval, draw_clusters

RESAMPLES = 2000
LEVEL = 0.95
# Resampling a single pair always gives the same pair: no interval rather than a zero-width one.
MIN_CLUSTERS = 2


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its percentile-bootstrap CI; `value` is None without data, the CI
    is None with fewer than two clusters."""

    value: float | None
    low: float | None
    high: float | None
    clusters: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RateEstimate(Estimate):
    successes: int
    trials: int


def bootstrap_rate(
    successes: npt.ArrayLike,
    trials: npt.ArrayLike,
    rng: np.random.Generator,
    *,
    resamples: int = RESAMPLES,
    level: float = LEVEL,
) -> RateEstimate:
    """Pooled rate sum(successes) / sum(trials) over clusters, CI by resampling clusters.

    Clusters with no trials (e.g. every verdict of a pair failed to parse) carry no weight.
    """
    s = np.asarray(successes, dtype=np.float64)
    t = np.asarray(trials, dtype=np.float64)
    keep = t > 0
    s, t = s[keep], t[keep]
    total_s, total_t = int(s.sum()), int(t.sum())
    if total_t == 0:
        return RateEstimate(None, None, None, 0, 0, 0)
    if len(t) < MIN_CLUSTERS:
        return RateEstimate(total_s / total_t, None, None, len(t), total_s, total_t)
    index = draw_clusters(len(t), rng, resamples)
    draws = s[index].sum(axis=1) / t[index].sum(axis=1)
    low, high = central_interval(draws, level)
    return RateEstimate(total_s / total_t, low, high, len(t), total_s, total_t)


def bootstrap_mean(
    values: npt.ArrayLike,
    rng: np.random.Generator,
    *,
    resamples: int = RESAMPLES,
    level: float = LEVEL,
) -> Estimate:
    """Mean of one value per cluster (e.g. pass@k of each pair), CI by resampling clusters."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return Estimate(None, None, None, 0)
    if v.size < MIN_CLUSTERS:
        return Estimate(float(v.mean()), None, None, int(v.size))
    draws = v[draw_clusters(v.size, rng, resamples)].mean(axis=1)
    low, high = central_interval(draws, level)
    return Estimate(float(v.mean()), low, high, int(v.size))


def bootstrap_paired(
    columns: Mapping[str, npt.ArrayLike],
    statistic: Callable[[dict[str, Floats]], Floats],
    rng: np.random.Generator,
    *,
    resamples: int = RESAMPLES,
    level: float = LEVEL,
) -> Estimate:
    """Any statistic of per-cluster sums, resampling clusters jointly across `columns`.

    `statistic` gets each column summed over the clusters of every resample (shape
    (resamples,)) and, for the point estimate, over all clusters (shape (1,)).
    """
    arrays = {name: np.asarray(col, dtype=np.float64) for name, col in columns.items()}
    n = len(next(iter(arrays.values()))) if arrays else 0
    if n == 0:
        return Estimate(None, None, None, 0)
    point = float(statistic({k: a.sum(keepdims=True) for k, a in arrays.items()})[0])
    if n < MIN_CLUSTERS:
        return Estimate(point, None, None, n)
    index = draw_clusters(n, rng, resamples)
    with np.errstate(invalid="ignore", divide="ignore"):
        draws = statistic({k: a[index].sum(axis=1) for k, a in arrays.items()})
    draws = draws[np.isfinite(draws)]
    if draws.size == 0:
        return Estimate(point, None, None, n)
    low, high = central_interval(draws, level)
    return Estimate(point, low, high, n)
