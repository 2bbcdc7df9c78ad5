"""Agreement statistics against hand-computed values, including the degenerate cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from persona_testbed.agreement.statistics import (
    category_counts,
    cohen_kappa,
    contingency_table,
    fleiss_kappa,
    kappa_from_table,
    krippendorff_alpha,
)


def test_cohen_kappa_hand_computed() -> None:
    # p_o = 4/5; rater 1 says A 3/5, rater 2 says A 2/5 -> p_e = .6*.4 + .4*.6 = .48
    # kappa = (.8 - .48) / (1 - .48) = 8/13
    result = cohen_kappa(list("AABBA"), list("ABBBA"))
    assert result.value == pytest.approx(8 / 13)
    assert result.n_items == 5
    assert not result.degenerate


def test_cohen_kappa_perfect_and_opposite() -> None:
    assert cohen_kappa(list("ABAB"), list("ABAB")).value == pytest.approx(1.0)
    assert cohen_kappa(list("ABAB"), list("BABA")).value == pytest.approx(-1.0)


def test_cohen_kappa_constant_identical_is_degenerate() -> None:
    one = cohen_kappa(list("AAAA"), list("AAAA"))
    assert one.value == 1.0 and one.degenerate
    nan = cohen_kappa(list("BBB"), list("BBB"), undefined="nan")
    assert math.isnan(nan.value) and nan.degenerate and not nan.defined


def test_cohen_kappa_constant_but_different_is_zero_not_degenerate() -> None:
    # Each rater uses one category, but not the same one: p_o = 0 = p_e, kappa = 0.
    result = cohen_kappa(list("AAA"), list("BBB"))
    assert result.value == pytest.approx(0.0)
    assert not result.degenerate


def test_cohen_kappa_one_constant_rater() -> None:
    # p_o = 1/2, p_e = 1 * 1/2 -> kappa 0.
    assert cohen_kappa(list("AAAA"), list("ABAB")).value == pytest.approx(0.0)


def test_cohen_kappa_rejects_bad_input() -> None:
    assert math.isnan(cohen_kappa([], []).value)
    with pytest.raises(ValueError, match="differ in length"):
        cohen_kappa(["A"], ["A", "B"])
    with pytest.raises(ValueError, match="'C' is not one of A, B"):
        cohen_kappa(["A", "C"], ["A", "B"])


def test_table_kappa_matches_sklearn_on_random_labels() -> None:
    rng = np.random.default_rng(3)
    for _ in range(20):
        one = list(rng.choice(["A", "B"], size=15, p=[0.6, 0.4]))
        two = [x if rng.random() < 0.7 else rng.choice(["A", "B"]) for x in one]
        table = contingency_table(one, two)
        assert table.sum() == 15
        expected = cohen_kappa_score(one, two, labels=["A", "B"])
        assert kappa_from_table(table).value == pytest.approx(expected)
        assert cohen_kappa(one, two).value == pytest.approx(expected)


def test_table_kappa_degenerate_and_empty() -> None:
    assert kappa_from_table(np.array([[0, 0], [0, 5]])).degenerate
    assert math.isnan(kappa_from_table(np.array([[4, 0], [0, 0]]), undefined="nan").value)
    assert math.isnan(kappa_from_table(np.zeros((2, 2), dtype=np.int64)).value)


# Three raters, one of them missing item 3 (None).
RATINGS = np.array(
    [["A", "A", "A"], ["B", "B", "A"], ["A", None, "A"], ["B", "B", "B"]], dtype=object
)


def test_category_counts() -> None:
    assert category_counts(RATINGS).tolist() == [[3, 0], [1, 2], [2, 0], [0, 3]]


def test_fleiss_kappa_hand_computed() -> None:
    # Items with 3 ratings: (3,0), (1,2), (0,3). P_i = 1, 1/3, 1 -> P = 7/9;
    # p_A = 4/9, p_B = 5/9 -> P_e = 41/81; kappa = (63 - 41) / (81 - 41) = 0.55.
    result = fleiss_kappa(category_counts(RATINGS))
    assert result.value == pytest.approx(0.55)
    assert result.n_items == 3  # the item with two ratings is left out


def test_fleiss_kappa_wikipedia_example() -> None:
    # Fleiss (1971) as worked on Wikipedia: 10 subjects, 14 raters, 5 categories, kappa 0.210.
    table = np.array(
        [
            [0, 0, 0, 0, 14],
            [0, 2, 6, 4, 2],
            [0, 0, 3, 5, 6],
            [0, 3, 9, 2, 0],
            [2, 2, 8, 1, 1],
            [7, 7, 0, 0, 0],
            [3, 2, 6, 3, 0],
            [2, 5, 3, 2, 2],
            [6, 5, 2, 1, 0],
            [0, 2, 2, 3, 7],
        ]
    )
    assert fleiss_kappa(table).value == pytest.approx(0.2099, abs=5e-4)


def test_fleiss_kappa_perfect_and_degenerate() -> None:
    assert fleiss_kappa(np.array([[3, 0], [0, 3]])).value == pytest.approx(1.0)
    constant = fleiss_kappa(np.array([[4, 0], [4, 0], [4, 0]]))
    assert constant.value == 1.0 and constant.degenerate
    assert math.isnan(fleiss_kappa(np.array([[4, 0]]), undefined="nan").value)


def test_krippendorff_alpha_hand_computed() -> None:
    # Coincidences: o_AA = 3 + 2 = 5, o_AB = o_BA = 1, o_BB = 1 + 3 = 4; n = 11, n_A = 6,
    # n_B = 5. alpha = 1 - (n - 1) * (o_AB + o_BA) / (2 n_A n_B) = 1 - 10 * 2 / 60 = 2/3.
    result = krippendorff_alpha(category_counts(RATINGS))
    assert result.value == pytest.approx(2 / 3)
    assert result.n_items == 4


def test_krippendorff_alpha_perfect_degenerate_and_unpairable() -> None:
    assert krippendorff_alpha(np.array([[2, 0], [0, 2], [2, 0]])).value == pytest.approx(1.0)
    constant = krippendorff_alpha(np.array([[2, 0], [3, 0]]))
    assert constant.value == 1.0 and constant.degenerate
    assert math.isnan(krippendorff_alpha(np.array([[1, 0], [0, 1]])).value)
