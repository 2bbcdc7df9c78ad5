"""Drawing whole person records with probability proportional to their weight (PWGTP).

Drawing whole records keeps the real joint distribution of every attribute. Two designs:

- `iid`: N independent draws with replacement, P(record) = w / sum(w);
- `pps` (default): systematic PPS with implicit stratification. Records are sorted by strata
  keys (age bracket, sex, race group, state; random order inside a stratum), laid end to end on a
  line with lengths equal to their weights, and hit by N equally spaced points with one random
  start. Each record is still selected w / step times in expectation, but every stratum gets
  its share of the draw to within one record, so marginals vary far less than with i.i.d. draws.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

import numpy as np

from persona_testbed.errors import PersonaError


class Sampling(StrEnum):
    PPS = "pps"
    IID = "iid"


def _check(weights: np.ndarray, n: int) -> None:
    if n < 1:
        raise PersonaError(f"--n must be at least 1 (got {n})")
    if weights.size == 0 or float(weights.sum()) <= 0:
        raise PersonaError("no person records to sample from (check --min-age/--max-age)")


def draw_iid(weights: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of `n` independent draws with replacement, P proportional to `weights`."""
    _check(weights, n)
    cumulative = np.cumsum(weights, dtype=np.float64)
    points = rng.random(n) * cumulative[-1]
    indices: np.ndarray = np.searchsorted(cumulative, points, side="right").astype(np.int64)
    return indices


def draw_systematic_pps(
    weights: np.ndarray,
    n: int,
    rng: np.random.Generator,
    strata: Sequence[np.ndarray] = (),
) -> np.ndarray:
    """Indices of a systematic PPS sample of size `n`, ordered by `strata` (most significant
    first), returned in random order."""
    _check(weights, n)
    tiebreak = rng.random(weights.size)
    # lexsort sorts by the last key first: random tie-break is the least significant key.
    order = np.lexsort((tiebreak, *reversed(list(strata)))) if strata else np.argsort(tiebreak)
    cumulative = np.cumsum(weights[order], dtype=np.float64)
    step = cumulative[-1] / n
    points = (rng.random() + np.arange(n, dtype=np.float64)) * step
    hits = np.searchsorted(cumulative, points, side="right")
    hits = np.minimum(hits, weights.size - 1)  # guard against rounding at the very end
    selected = order[hits]
    shuffled: np.ndarray = selected[rng.permutation(n)].astype(np.int64)
    return shuffled


def draw(
    method: Sampling,
    weights: np.ndarray,
    n: int,
    rng: np.random.Generator,
    strata: Sequence[np.ndarray] = (),
) -> np.ndarray:
    if method is Sampling.IID:
        return draw_iid(weights, n, rng)
    return draw_systematic_pps(weights, n, rng, strata)
