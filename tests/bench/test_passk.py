"""The unbiased pass@k estimator against hand-computed values."""

from __future__ import annotations

import math

import pytest

from persona_testbed.bench.passk import pass_at_k, pass_at_k_per_cluster


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [
        (4, 1, 1, 1 / 4),  # pass@1 is the pass rate
        (4, 1, 2, 1 - 3 / 6),  # 1 - C(3,2)/C(4,2)
        (5, 2, 3, 1 - 1 / 10),  # 1 - C(3,3)/C(5,3)
        (10, 3, 2, 1 - 21 / 45),  # 1 - C(7,2)/C(10,2)
        (16, 1, 16, 1.0),  # every sample drawn: the one pass is among them
        (4, 3, 2, 1.0),  # fewer failures than draws
        (8, 0, 4, 0.0),
        (8, 8, 1, 1.0),
    ],
)
def test_pass_at_k_matches_hand_computed_values(n: int, c: int, k: int, expected: float) -> None:
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


def test_pass_at_k_equals_the_binomial_formula_on_a_grid() -> None:
    for n in range(1, 17):
        for c in range(n + 1):
            for k in range(1, n + 1):
                exact = 1 - math.comb(n - c, k) / math.comb(n, k)
                assert pass_at_k(n, c, k) == pytest.approx(exact, abs=1e-12)


def test_pass_at_k_rejects_impossible_counts() -> None:
    with pytest.raises(ValueError, match="k <= n"):
        pass_at_k(3, 1, 4)
    with pytest.raises(ValueError, match="c <= n"):
        pass_at_k(3, 4, 1)


def test_pairs_with_fewer_valid_samples_than_k_are_left_out() -> None:
    values = pass_at_k_per_cluster([4, 1, 4], [1, 1, 0], k=2)
    assert values == pytest.approx([0.5, 0.0])
