"""Building blocks of the cluster bootstrap that the agreement studies and the bench share:
clusters drawn with replacement, and the percentile interval of the resampled statistic."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]


def draw_clusters(clusters: int, rng: np.random.Generator, resamples: int) -> npt.NDArray[np.int64]:
    """resamples x clusters: the clusters (0..clusters-1) each resample draws, with replacement."""
    return rng.integers(0, clusters, size=(resamples, clusters))


def central_interval(draws: Floats, level: float) -> tuple[float, float]:
    """The central `level` percentile interval of `draws`."""
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(draws, [tail, 1.0 - tail])
    return float(low), float(high)
