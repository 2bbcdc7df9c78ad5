"""One --seed, independent streams per purpose: reproducible, and keyed apart."""

from __future__ import annotations

import numpy as np

from persona_testbed.seeding import child_rng, child_seed


def test_a_purpose_gives_the_same_numbers_under_the_same_seed() -> None:
    first = child_rng(7, "sample", "p001").random(5)
    assert np.array_equal(first, child_rng(7, "sample", "p001").random(5))
    assert not np.array_equal(first, child_rng(8, "sample", "p001").random(5))


def test_purposes_and_keys_are_independent_streams() -> None:
    draws = [
        child_rng(0, "split").random(4),
        child_rng(0, "sample").random(4),
        child_rng(0, "sample", "p001").random(4),
        child_rng(0, "sample", "p002").random(4),
        child_rng(0, "sample/p001").random(4),
    ]
    assert len({tuple(d) for d in draws}) == len(draws)


def test_child_seed_is_a_31_bit_integer_fixed_by_seed_and_purpose() -> None:
    seed = child_seed(3, "kmeans")
    assert isinstance(seed, int) and 0 <= seed < 2**31 - 1
    assert seed == child_seed(3, "kmeans") != child_seed(3, "umap")
