"""Agreement CIs from the shared cluster bootstrap (persona_testbed.estimation).

Labels of one persona are correlated (same role-play card), so the unit resampled is the
persona (or the LOO pair), never the single item; the statistic is recomputed on every
resample and the interval is the shared t interval on the bootstrap variance
(docs/statistics.md). Items carry no prompt id here, so the bootstrap is one-way.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from persona_testbed.agreement.statistics import (
    Agreement,
    Counts,
    UndefinedPolicy,
)
from persona_testbed.estimation import LEVEL, RESAMPLES, Estimate, Floats
from persona_testbed.estimation import bootstrap_mean as shared_bootstrap_mean
from persona_testbed.estimation.bootstrap import cluster_variance, resample_counts, t_interval

__all__ = [
    "AgreementEstimate",
    "bootstrap_cohen_kappa",
    "bootstrap_item_counts",
    "bootstrap_mean",
    "draws_interval",
    "pooled_kappas",
]


@dataclass(frozen=True)
class AgreementEstimate(Estimate):
    """The toolkit's estimate (persona_testbed.estimation: value, CI from the shared t interval,
    None when it cannot be formed, clusters) plus the items it rests on and whether the point
    statistic was degenerate (one category used throughout)."""

    n_items: int = 0
    degenerate: bool = False

    def as_dict(self) -> dict[str, Any]:
        fields = ("value", "low", "high", "n_items", "clusters", "degenerate")
        return {
            name: (_rounded(v) if isinstance(v, float) else v)
            for name in fields
            for v in [getattr(self, name)]
        }


def _rounded(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 6)


def _finite(value: float) -> float | None:
    return None if math.isnan(value) else value


def _estimate(
    point: Agreement, value: float | None, low: float | None, high: float | None, clusters: int
) -> AgreementEstimate:
    return AgreementEstimate(
        value,
        low,
        high,
        clusters=clusters,
        n_items=point.n_items,
        degenerate=point.degenerate,
    )


def draws_interval(
    point: float, draws: Floats, clusters: int, level: float
) -> tuple[float | None, float | None]:
    """The shared t interval from the finite draws' variance, kept within [-1, 1] (kappa,
    alpha); None when no draw is finite."""
    if not np.isfinite(draws).any():
        return None, None
    low, high = t_interval(
        point, cluster_variance(draws, clusters), clusters, scale="identity", level=level
    )
    return max(-1.0, low), min(1.0, high)


def bootstrap_mean(
    values: Sequence[float],
    rng: np.random.Generator,
    *,
    resamples: int = RESAMPLES,
    level: float = LEVEL,
) -> AgreementEstimate:
    """Mean of per-cluster values (NaN left out) with a CI from resampling the clusters."""
    array = np.asarray(values, dtype=np.float64)
    finite = int(np.isfinite(array).sum())
    shared = shared_bootstrap_mean(array, rng, resamples=resamples, level=level)
    low, high = shared.low, shared.high
    if low is not None and high is not None:
        low, high = max(-1.0, low), min(1.0, high)
    return AgreementEstimate(shared.value, low, high, clusters=finite, n_items=finite)


def _bootstrap(
    point: Agreement,
    clusters: int,
    statistic: Callable[[Counts], float],
    rng: np.random.Generator,
    resamples: int,
    level: float,
) -> AgreementEstimate:
    if clusters < 2 or not point.defined:
        return _estimate(point, _finite(point.value), None, None, clusters)
    weights = resample_counts(clusters, rng, resamples)
    draws = np.fromiter((statistic(w) for w in weights), dtype=np.float64, count=resamples)
    low, high = draws_interval(point.value, draws, clusters, level)
    return _estimate(point, point.value, low, high, clusters)


def bootstrap_cohen_kappa(
    tables: Counts,
    point: Agreement,
    rng: np.random.Generator,
    *,
    undefined: UndefinedPolicy = "one",
    resamples: int = RESAMPLES,
    level: float = LEVEL,
) -> AgreementEstimate:
    """CI of the pooled Cohen's kappa from per-cluster 2x2 tables (clusters x 2 x 2).

    All resamples at once: the pooled table of each is a weighted sum of the cluster tables,
    and kappa_from_table's formula is applied to them as arrays (pooled_kappas)."""
    clusters = tables.shape[0]
    if clusters < 2 or not point.defined:
        return _estimate(point, _finite(point.value), None, None, clusters)
    weights = resample_counts(clusters, rng, resamples)
    pooled = np.tensordot(weights, tables, axes=1)
    draws = pooled_kappas(pooled, undefined=undefined)
    low, high = draws_interval(point.value, draws, clusters, level)
    return _estimate(point, point.value, low, high, clusters)


def pooled_kappas(tables: Counts, *, undefined: UndefinedPolicy = "nan") -> Floats:
    """Cohen's kappa of each 2x2 table in `tables` (k x 2 x 2), as kappa_from_table gives it:
    NaN without items; the `undefined` policy where both raters use one and the same category
    (chance agreement 1)."""
    counts = tables.astype(np.float64)
    n = counts.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        rows, cols = counts.sum(axis=2) / n[:, None], counts.sum(axis=1) / n[:, None]
        observed = (counts[:, 0, 0] + counts[:, 1, 1]) / n
        chance = (rows * cols).sum(axis=1)
        kappas: Floats = (observed - chance) / (1.0 - chance)
    single = (n > 0) & ((counts.sum(axis=1) + counts.sum(axis=2) > 0).sum(axis=1) == 1)
    kappas[single] = 1.0 if undefined == "one" else math.nan
    kappas[n == 0] = math.nan
    return kappas


def bootstrap_item_counts(
    counts: Counts,
    cluster_of_item: npt.NDArray[np.int64],
    which: Callable[..., Agreement],
    rng: np.random.Generator,
    *,
    undefined: UndefinedPolicy = "one",
    resamples: int = RESAMPLES,
    level: float = LEVEL,
) -> AgreementEstimate:
    """Fleiss' kappa or Krippendorff's alpha (`which`) on items x categories counts, with a CI
    from resampling the clusters the items belong to (`cluster_of_item`, codes 0..k-1)."""
    point = which(counts, undefined=undefined)
    clusters = int(cluster_of_item.max()) + 1 if cluster_of_item.size else 0

    def statistic(weights: Counts) -> float:
        repeated = np.repeat(counts, weights[cluster_of_item], axis=0)
        return float(which(repeated, undefined=undefined).value)

    return _bootstrap(point, clusters, statistic, rng, resamples, level)
