"""Independent random streams from the one --seed, one per purpose.

Each stream is keyed by its purpose's name (and keys such as an attribute), so adding a draw
never shifts the numbers any other draw sees.
"""

from __future__ import annotations

import zlib

import numpy as np


def _key(part: str) -> int:
    return zlib.crc32(part.encode("utf-8"))


def child_rng(seed: int, purpose: str, *keys: str) -> np.random.Generator:
    """The generator for `purpose` (e.g. "loo-personas", keyed by attribute) under `seed`."""
    spawn_key = (_key(purpose), *(_key(k) for k in keys))
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=spawn_key))
