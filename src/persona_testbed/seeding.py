"""Independent random streams from the one --seed, one per purpose.

A stream is keyed by its purpose's name (and optional keys such as a persona id or an
attribute), so adding a new draw never shifts the numbers that any other draw sees.
"""

from __future__ import annotations

import zlib

import numpy as np


def _key(part: str) -> int:
    return zlib.crc32(part.encode("utf-8"))


def child_rng(seed: int, purpose: str, *keys: str) -> np.random.Generator:
    """The generator for `purpose` (e.g. "split", "sample/<persona_id>", "big five"; keyed
    further by `keys`, e.g. an attribute) under `seed`, independent of all others."""
    spawn_key = (_key(purpose), *(_key(k) for k in keys))
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=spawn_key))


def child_seed(seed: int, purpose: str) -> int:
    """A 31-bit integer seed for libraries that take an int (scikit-learn's random_state)."""
    return int(child_rng(seed, purpose).integers(0, 2**31 - 1))
