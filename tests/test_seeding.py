"""One --seed, independent streams per purpose: reproducible, and keyed apart."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from persona_testbed import seeding
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


def test_a_new_stream_leaves_the_existing_streams_draws_unchanged() -> None:
    names = ("bench/pairs", "study/items", "plot jitter")
    before = [child_rng(5, name).random(6) for name in names]
    # A new purpose, drawn from before the others are drawn again (as a new step would be).
    child_rng(5, "a new draw").random(100)
    after = [child_rng(5, name).random(6) for name in names]
    assert all(np.array_equal(b, a) for b, a in zip(before, after, strict=True))


# The one place a generator may be made from a seed; retry jitter is not a reproducible draw.
_SEEDING_MODULE = Path(seeding.__file__)
# random.uniform: jitter of retry back-off only (one server, and a fleet of them).
_ALLOWED = {"llm/backends/openai_http.py", "llm/backends/pool.py"}
_POSITIONAL = re.compile(r"SeedSequence\(|default_rng\(|\.spawn\(|random\.Random\(|import random\b")


def test_every_seeded_draw_goes_through_the_named_streams_of_seeding_py() -> None:
    package = _SEEDING_MODULE.parent
    offenders = [
        f"{path.relative_to(package)}:{number}"
        for path in sorted(package.rglob("*.py"))
        if path != _SEEDING_MODULE and path.relative_to(package).as_posix() not in _ALLOWED
        for number, line in enumerate(path.read_text("utf-8").splitlines(), start=1)
        if _POSITIONAL.search(line)
    ]
    assert offenders == []
