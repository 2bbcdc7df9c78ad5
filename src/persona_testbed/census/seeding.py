"""Independent random streams from the one --seed, one per purpose.

Each purpose gets its own stream keyed by its name, so adding a new draw (a new purpose) never
shifts the numbers any other draw sees.
"""

from __future__ import annotations

import zlib

import numpy as np


def stream(seed: int, purpose: str) -> np.random.Generator:
    """A generator for `purpose` (e.g. "sampling/0", "big five"), independent of all others."""
    key = zlib.crc32(purpose.encode("utf-8"))
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(key,))))
