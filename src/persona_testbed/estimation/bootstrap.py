"""The one cluster bootstrap behind every confidence interval the toolkit prints.

Observations (bench pairs, preference pairs, agreement items) are nested in personas: one
persona's answers share a role-play card, so they are correlated. Many are also crossed with
prompts: the preference pairs of one prompt share its base answer y_l, and the bench pairs of
one question share that question. Treating observations as independent makes intervals far too
narrow (a Wilson interval over pairs covered 34% at a nominal 95% in the issue-13 simulation).

Every statistic here is a function of column sums (successes / trials, value / count, ...):

- nested (`crossed=None`): V is the variance of the statistic over resamples that draw whole
  personas with replacement (the cluster bootstrap), times G / (G - 1) for G personas.
- crossed (`crossed=` prompt ids): the two-way variance of Cameron, Gelbach & Miller (2011),
  V = V_persona + V_prompt - V_persona*prompt, each term such a one-way cluster bootstrap
  variance, floored at the larger one-way term. Owen's pigeonhole bootstrap (personas and
  prompts resampled at once) counts the pair-level noise about three times and over-covers
  badly when that noise dominates, as it does for binary outcomes.

The interval is a t interval (G - 1 degrees of freedom, the smaller cluster count when crossed)
on the logit scale for rates and other [0, 1] statistics (percentile and symmetric intervals
miss on the side of 1 for shares near 95%), on the natural scale otherwise. A rate of exactly
0 or 1 has no logit: it gets the Wilson interval with one observation per cluster (crossed:
the smaller count), the most clustered case. One resample count (RESAMPLES) for all;
docs/statistics.md gives the measured coverage.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from scipy.stats import norm
from scipy.stats import t as student_t

Floats = npt.NDArray[np.float64]
Counts = npt.NDArray[np.int64]
Statistic = Callable[[dict[str, Floats]], Floats]
# "logit": a [0, 1] statistic (rates, shares, pass@k); "identity": anything else (differences).
Scale = Literal["logit", "identity"]

RESAMPLES = 2000
LEVEL = 0.95
# Resampling a single persona always gives the same data: no interval rather than zero width.
MIN_CLUSTERS = 2
# Resamples are drawn in chunks of at most this many cluster counts (bounds memory).
_CHUNK_CELLS = 4_000_000


@dataclass(frozen=True)
class Estimate:
    """A point estimate and its CI. `value` is None without data; the CI is None with fewer
    than two clusters. `clusters` counts personas (the resampled unit), `crossed` the prompts
    the observations are crossed with (None: nested design)."""

    value: float | None
    low: float | None
    high: float | None
    clusters: int
    crossed: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RateEstimate(Estimate):
    """A pooled rate successes / trials with its CI."""

    successes: int = 0
    trials: int = 0


def cluster_codes(ids: npt.ArrayLike) -> tuple[Counts, int]:
    """Codes 0..k-1 of the cluster ids (any hashable values) and k."""
    array = np.asarray(ids)
    if array.size == 0:
        return np.zeros(0, dtype=np.int64), 0
    keys = array if array.dtype.kind in "iub" else array.astype(str)
    uniques, codes = np.unique(keys, return_inverse=True)
    return codes.astype(np.int64).reshape(-1), int(uniques.size)


def resample_counts(
    clusters: int, rng: np.random.Generator, resamples: int
) -> npt.NDArray[np.int64]:
    """resamples x clusters: how often each cluster is drawn (with replacement) per resample."""
    # Offsets make one bincount count every resample.
    draws = rng.integers(0, clusters, size=(resamples, clusters), dtype=np.int64)
    draws += (np.arange(resamples, dtype=np.int64) * clusters)[:, None]
    flat = np.bincount(draws.ravel(), minlength=resamples * clusters)
    return flat.reshape(resamples, clusters).astype(np.int64)


def resampled_sums(
    values: Floats, codes: Counts, clusters: int, rng: np.random.Generator, resamples: int
) -> Floats:
    """resamples x columns: the column sums of `values` (rows x columns) over cluster-bootstrap
    resamples, rows grouped into `clusters` clusters by `codes`."""
    per_cluster = np.stack(
        [np.bincount(codes, weights=column, minlength=clusters) for column in values.T], axis=1
    )
    out = np.empty((resamples, values.shape[1]))
    chunk = max(1, _CHUNK_CELLS // max(1, clusters))
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        # Summing the drawn clusters' totals is several times faster than counts @ totals.
        draws = rng.integers(0, clusters, size=(size, clusters), dtype=np.int32)
        for j in range(values.shape[1]):
            out[start : start + size, j] = per_cluster[:, j][draws].sum(axis=1)
    return out


def central_interval(draws: Floats, level: float = LEVEL) -> tuple[float | None, float | None]:
    """Central `level` percentile interval of the finite draws (None when none is finite)."""
    finite = draws[np.isfinite(draws)]
    if finite.size == 0:
        return None, None
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(finite, [tail, 1.0 - tail])
    return float(low), float(high)


def _draws(
    matrix: Floats,
    names: list[str],
    statistic: Statistic,
    codes: Counts,
    clusters: int,
    rng: np.random.Generator,
    resamples: int,
) -> Floats:
    sums = resampled_sums(matrix, codes, clusters, rng, resamples)
    with np.errstate(invalid="ignore", divide="ignore"):
        draws: Floats = statistic({name: sums[:, i] for i, name in enumerate(names)})
    return draws


def cluster_variance(draws: Floats, clusters: int) -> float:
    """Bootstrap variance of the finite draws with the small-sample factor G / (G - 1) (the
    bootstrap divides by G where an unbiased cluster-robust variance divides by G - 1)."""
    finite = draws[np.isfinite(draws)]
    if finite.size < 2 or clusters < 2:
        return 0.0
    return float(finite.var()) * clusters / (clusters - 1)


def wilson_interval(successes: float, n: float, level: float = LEVEL) -> tuple[float, float]:
    """Wilson score interval for successes out of n independent trials."""
    z = float(norm.ppf(0.5 + level / 2.0))
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    low = 0.0 if successes <= 0 else max(0.0, centre - half)
    high = 1.0 if successes >= n else min(1.0, centre + half)
    return low, high


def t_interval(
    point: float,
    variance: float,
    clusters: int,
    *,
    scale: Scale,
    level: float = LEVEL,
) -> tuple[float, float]:
    """point +- t(level, clusters - 1) * sqrt(variance), on the logit scale for `scale`
    "logit" (delta method), where a point at 0 or 1 gets the Wilson interval over clusters."""
    q = float(student_t.ppf(0.5 + level / 2.0, max(1, clusters - 1)))
    if scale == "identity":
        half = q * math.sqrt(max(variance, 0.0))
        return point - half, point + half
    if point <= 0.0 or point >= 1.0:
        return wilson_interval(point * clusters, clusters, level)
    logit = math.log(point / (1.0 - point))
    half = q * math.sqrt(max(variance, 0.0)) / (point * (1.0 - point))
    return _expit(logit - half), _expit(logit + half)


def _expit(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def bootstrap_statistic(
    columns: Mapping[str, npt.ArrayLike],
    statistic: Statistic,
    rng: np.random.Generator,
    *,
    clusters: npt.ArrayLike | None = None,
    crossed: npt.ArrayLike | None = None,
    scale: Scale = "identity",
    resamples: int = RESAMPLES,
    level: float = LEVEL,
) -> Estimate:
    """Any statistic of column sums with a CI from resampling personas (`clusters`, one id per
    row; None: every row its own cluster), two-way with the prompts they are `crossed` with.

    `statistic` gets each column summed over a resample (arrays of shape (resamples,)) and,
    for the point estimate, over all rows (shape (1,)); non-finite draws are left out.
    """
    names = list(columns)
    rows = len(np.asarray(columns[names[0]])) if names else 0
    if rows == 0:
        return Estimate(None, None, None, 0, None if crossed is None else 0)
    matrix = np.column_stack([np.asarray(columns[n], dtype=np.float64) for n in names])
    codes, n_clusters = cluster_codes(np.arange(rows) if clusters is None else clusters)
    crossed_codes, n_crossed = (None, None) if crossed is None else cluster_codes(crossed)
    totals = {n: matrix[:, i].sum(keepdims=True) for i, n in enumerate(names)}
    with np.errstate(invalid="ignore", divide="ignore"):
        point = float(statistic(totals)[0])
    value = point if math.isfinite(point) else None
    if value is None or n_clusters < MIN_CLUSTERS:
        return Estimate(value, None, None, n_clusters, n_crossed)
    draws = _draws(matrix, names, statistic, codes, n_clusters, rng, resamples)
    variance, df_clusters = cluster_variance(draws, n_clusters), n_clusters
    if crossed_codes is not None and n_crossed is not None and n_crossed >= MIN_CLUSTERS:
        variance = _two_way_variance(
            variance, matrix, names, statistic, codes, crossed_codes, n_crossed, rng, resamples
        )
        df_clusters = min(n_clusters, n_crossed)
    low, high = t_interval(value, variance, df_clusters, scale=scale, level=level)
    return Estimate(value, low, high, n_clusters, n_crossed)


def _two_way_variance(
    v_persona: float,
    matrix: Floats,
    names: list[str],
    statistic: Statistic,
    persona_codes: Counts,
    prompt_codes: Counts,
    prompts: int,
    rng: np.random.Generator,
    resamples: int,
) -> float:
    """Cameron-Gelbach-Miller: V_persona + V_prompt - V_(persona, prompt) cell, floored at the
    larger one-way variance (the difference can come out negative by chance)."""
    prompt_draws = _draws(matrix, names, statistic, prompt_codes, prompts, rng, resamples)
    v_prompt = cluster_variance(prompt_draws, prompts)
    cells, n_cells = cluster_codes(persona_codes * prompts + prompt_codes)
    v_cell = cluster_variance(
        _draws(matrix, names, statistic, cells, n_cells, rng, resamples), n_cells
    )
    return max(v_persona + v_prompt - v_cell, v_persona, v_prompt)


def _ratio(sums: dict[str, Floats]) -> Floats:
    result: Floats = sums["numerator"] / sums["denominator"]
    return result


def bootstrap_rate(
    successes: npt.ArrayLike,
    trials: npt.ArrayLike,
    rng: np.random.Generator,
    *,
    clusters: npt.ArrayLike | None = None,
    crossed: npt.ArrayLike | None = None,
    resamples: int = RESAMPLES,
    level: float = LEVEL,
) -> RateEstimate:
    """Pooled rate sum(successes) / sum(trials), one row per observation (a bench pair with its
    samples, a judged preference pair); rows without trials carry no weight and are dropped."""
    s = np.asarray(successes, dtype=np.float64)
    t = np.asarray(trials, dtype=np.float64)
    keep = t > 0
    estimate = bootstrap_statistic(
        {"numerator": s[keep], "denominator": t[keep]},
        _ratio,
        rng,
        clusters=None if clusters is None else np.asarray(clusters)[keep],
        crossed=None if crossed is None else np.asarray(crossed)[keep],
        scale="logit",
        resamples=resamples,
        level=level,
    )
    return RateEstimate(**asdict(estimate), successes=int(s[keep].sum()), trials=int(t[keep].sum()))


def bootstrap_mean(
    values: npt.ArrayLike,
    rng: np.random.Generator,
    *,
    clusters: npt.ArrayLike | None = None,
    crossed: npt.ArrayLike | None = None,
    scale: Scale = "identity",
    resamples: int = RESAMPLES,
    level: float = LEVEL,
) -> Estimate:
    """Mean of one value per row (NaN rows left out); `scale` "logit" for [0, 1] values
    (pass@k)."""
    v = np.asarray(values, dtype=np.float64)
    keep = np.isfinite(v)
    return bootstrap_statistic(
        {"numerator": v[keep], "denominator": np.ones(int(keep.sum()))},
        _ratio,
        rng,
        clusters=None if clusters is None else np.asarray(clusters)[keep],
        crossed=None if crossed is None else np.asarray(crossed)[keep],
        scale=scale,
        resamples=resamples,
        level=level,
    )
