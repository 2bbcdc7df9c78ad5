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
    gwet_ac1,
    gwet_ac1_from_table,
    kappa_from_table,
    krippendorff_alpha,
    pabak,
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


def test_cohen_kappa_constant_identical_is_degenerate_and_missing_by_default() -> None:
    missing = cohen_kappa(list("AAAA"), list("AAAA"))
    assert math.isnan(missing.value) and missing.degenerate and not missing.defined
    one = cohen_kappa(list("BBB"), list("BBB"), undefined="one")
    assert one.value == 1.0 and one.degenerate


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
    assert math.isnan(kappa_from_table(np.array([[4, 0], [0, 0]])).value)
    assert kappa_from_table(np.array([[4, 0], [0, 0]]), undefined="one").value == 1.0
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
    constant = fleiss_kappa(np.array([[4, 0], [4, 0], [4, 0]]), undefined="one")
    assert constant.value == 1.0 and constant.degenerate
    assert math.isnan(fleiss_kappa(np.array([[4, 0]])).value)


def test_krippendorff_alpha_hand_computed() -> None:
    # Coincidences: o_AA = 3 + 2 = 5, o_AB = o_BA = 1, o_BB = 1 + 3 = 4; n = 11, n_A = 6,
    # n_B = 5. alpha = 1 - (n - 1) * (o_AB + o_BA) / (2 n_A n_B) = 1 - 10 * 2 / 60 = 2/3.
    result = krippendorff_alpha(category_counts(RATINGS))
    assert result.value == pytest.approx(2 / 3)
    assert result.n_items == 4


def test_krippendorff_alpha_perfect_degenerate_and_unpairable() -> None:
    assert krippendorff_alpha(np.array([[2, 0], [0, 2], [2, 0]])).value == pytest.approx(1.0)
    constant = krippendorff_alpha(np.array([[2, 0], [3, 0]]))
    assert math.isnan(constant.value) and constant.degenerate
    assert math.isnan(krippendorff_alpha(np.array([[1, 0], [0, 1]])).value)


def test_pabak_and_ac1_hand_computed() -> None:
    # Ten items: both A 7, (A, B) 1, (B, A) 1, both B 1. p_o = 0.8.
    # PABAK = 2 * 0.8 - 1 = 0.6.
    # AC1: pi_A = (8 + 8) / 20 = 0.8, p_e = 2 * 0.8 * 0.2 = 0.32, AC1 = 0.48 / 0.68 = 12/17.
    # (Cohen's kappa: p_e = 0.8^2 + 0.2^2 = 0.68, kappa = 0.12 / 0.32 = 0.375.)
    one = list("AAAAAAAABB")
    two = list("AAAAAAABAB")
    assert pabak(one, two).value == pytest.approx(0.6)
    assert gwet_ac1(one, two).value == pytest.approx(12 / 17)
    assert cohen_kappa(one, two).value == pytest.approx(0.375)
    assert pabak(one, two).n_items == gwet_ac1(one, two).n_items == 10


def test_pabak_and_ac1_where_kappa_is_undefined_or_paradoxical() -> None:
    # Constant identical labels: kappa 0/0, but both raters agree on every item.
    assert pabak(list("AAAA"), list("AAAA")).value == 1.0
    assert gwet_ac1(list("AAAA"), list("AAAA")).value == 1.0
    # Opposite labels on a balanced set: every measure says -1.
    assert pabak(list("ABAB"), list("BABA")).value == -1.0
    assert gwet_ac1(list("ABAB"), list("BABA")).value == pytest.approx(-1.0)
    # Unequal marginals (Gwet 2008's setting): A 3/4 vs 1/4 -> pi_A = 1/2, p_e = 1/2,
    # p_o = 1/2 -> AC1 = 0; kappa: p_e = 3/4 * 1/4 * 2 = 3/8 -> (1/2 - 3/8) / (5/8) = 0.2.
    assert gwet_ac1(list("AAAB"), list("ABBB")).value == pytest.approx(0.0)
    assert pabak(list("AAAB"), list("ABBB")).value == pytest.approx(0.0)
    assert cohen_kappa(list("AAAB"), list("ABBB")).value == pytest.approx(0.2)
    assert math.isnan(gwet_ac1_from_table(np.zeros((2, 2), dtype=np.int64)).value)
    with pytest.raises(ValueError, match="'C' is not one of A, B"):
        pabak(["C"], ["A"])


def test_independent_raters_average_kappa_zero_when_undefined_kappa_is_missing() -> None:
    """Issue 13: two independent raters who each say A with probability 0.9, over 10 items.
    True agreement beyond chance is 0. One pair in eight (0.9^20 = 0.12) has every label A
    and an undefined kappa; reporting those as 1.0 (the old default) lifted the mean to 0.12.
    Left out (and counted), the mean is 0 within 0.03."""
    rng = np.random.default_rng(2026)
    pairs = 2000
    defined: list[float] = []
    as_one: list[float] = []
    undefined = 0
    for _ in range(pairs):
        one = np.where(rng.random(10) < 0.9, "A", "B").tolist()
        two = np.where(rng.random(10) < 0.9, "A", "B").tolist()
        kappa = cohen_kappa(one, two)
        if kappa.defined:
            defined.append(kappa.value)
        else:
            assert kappa.degenerate
            undefined += 1
        # What the old default (`undefined="one"`) reported for the same pair.
        as_one.append(1.0 if kappa.degenerate else kappa.value)
    assert abs(float(np.mean(defined))) < 0.03
    assert undefined == pairs - len(defined)
    assert undefined / pairs == pytest.approx(0.9**20, abs=0.02)
    assert float(np.mean(as_one)) == pytest.approx(0.12, abs=0.02)
    assert cohen_kappa(list("AAAA"), list("AAAA"), undefined="one").value == 1.0
