"""compare_annotators on hand-made long label tables."""

from __future__ import annotations

import itertools

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import cohen_kappa_score

from persona_testbed.agreement import MAJORITY_ANNOTATOR, compare_annotators
from persona_testbed.agreement.statistics import category_counts, fleiss_kappa, krippendorff_alpha
from persona_testbed.errors import InputError

# Three personas x four items; three model annotators.
ITEMS = [(f"p{p}", f"i{p}{i}") for p in range(3) for i in range(4)]
LABELS = {
    "m1": "AABA" + "BABA" + "AABB",
    "m2": "AABB" + "BABA" + "ABBB",
    "m3": "ABAA" + "BBBA" + "AAAB",
}


def _frame(labels: dict[str, str], kind: str = "model") -> pl.DataFrame:
    rows = [
        {
            "annotator": name,
            "annotator_kind": kind,
            "persona_id": persona,
            "item_id": item,
            "label": label,
        }
        for name, text in labels.items()
        for (persona, item), label in zip(ITEMS, text, strict=True)
    ]
    return pl.DataFrame(rows)


def test_pairwise_kappa_matches_sklearn_pooled_and_per_persona() -> None:
    result = compare_annotators(_frame(LABELS), resamples=200)
    assert result.annotators == ["m1", "m2", "m3"]
    assert result.pairwise.height == 3
    for row in result.pairwise.iter_rows(named=True):
        one, two = LABELS[row["annotator_1"]], LABELS[row["annotator_2"]]
        assert row["kappa"] == pytest.approx(cohen_kappa_score(list(one), list(two)))
        assert row["observed_agreement"] == pytest.approx(
            np.mean([a == b for a, b in zip(one, two, strict=True)])
        )
        assert row["n_items"] == 12 and row["n_personas"] == 3
        assert row["kappa_low"] <= row["kappa"] <= row["kappa_high"]
    m1_m3 = result.per_persona.filter(
        (pl.col("annotator_1") == "m1") & (pl.col("annotator_2") == "m3")
    ).sort("persona_id")
    expected = [
        cohen_kappa_score(list(LABELS["m1"][k : k + 4]), list(LABELS["m3"][k : k + 4]))
        for k in (0, 4, 8)
    ]
    assert m1_m3["kappa"].to_list() == pytest.approx(expected)


def test_kappa_matrix_is_symmetric_with_unit_diagonal() -> None:
    result = compare_annotators(_frame(LABELS), resamples=50)
    matrix = result.kappa_matrix()
    assert np.allclose(np.diag(matrix), 1.0)
    assert np.allclose(matrix, matrix.T)
    assert matrix[0, 1] == pytest.approx(cohen_kappa_score(list(LABELS["m1"]), list(LABELS["m2"])))


def test_fleiss_and_alpha_with_more_than_two_annotators() -> None:
    result = compare_annotators(_frame(LABELS), resamples=100)
    ratings = np.array([list(LABELS[name]) for name in ("m1", "m2", "m3")], dtype=object).T
    counts = category_counts(ratings)
    assert result.fleiss is not None and result.alpha is not None
    assert result.fleiss.value == pytest.approx(fleiss_kappa(counts).value)
    assert result.alpha.value == pytest.approx(krippendorff_alpha(counts).value)
    assert result.fleiss.clusters == 3 and result.fleiss.n_items == 12
    two = compare_annotators(_frame({k: LABELS[k] for k in ("m1", "m2")}), resamples=10)
    assert two.fleiss is None and two.alpha is None


def test_only_shared_items_are_compared() -> None:
    frame = _frame(LABELS).filter(~((pl.col("annotator") == "m2") & (pl.col("item_id") == "i00")))
    result = compare_annotators(frame, resamples=10)
    row = result.pairwise.filter(pl.col("annotator_2") == "m2").row(0, named=True)
    assert row["n_items"] == 11
    assert row["kappa"] == pytest.approx(
        cohen_kappa_score(list(LABELS["m1"][1:]), list(LABELS["m2"][1:]))
    )


def test_perfect_constant_agreement_is_flagged_degenerate() -> None:
    constant = {"m1": "A" * 12, "m2": "A" * 12}
    as_one = compare_annotators(_frame(constant), undefined="one", resamples=20)
    row = as_one.pairwise.row(0, named=True)
    assert row["kappa"] == 1.0 and row["degenerate"] and row["personas_degenerate"] == 3
    # Even when reported as 1.0, an undefined per-persona kappa is never averaged.
    assert row["persona_kappa_mean"] is None
    missing = compare_annotators(_frame(constant), resamples=20)
    assert missing.pairwise["kappa"][0] is None or np.isnan(missing.pairwise["kappa"][0])
    assert missing.summary()["pairwise"][0]["kappa"] is None
    assert missing.pairwise["personas_degenerate"][0] == 3


def _humans() -> pl.DataFrame:
    """Four humans per persona, each seeing one persona (like the paper's study)."""
    truth = LABELS["m1"]
    rows = []
    for index, (persona, item) in enumerate(ITEMS):
        for h in range(4):
            flip = (index + h) % 5 == 0  # some disagreement
            label = truth[index] if not flip else ("B" if truth[index] == "A" else "A")
            rows.append(
                {
                    "annotator": f"{persona}-h{h}",
                    "annotator_kind": "human",
                    "persona_id": persona,
                    "item_id": item,
                    "label": label,
                }
            )
    return pl.DataFrame(rows)


def test_humans_give_a_majority_annotator_and_a_baseline() -> None:
    frame = pl.concat([_frame(LABELS), _humans()])
    result = compare_annotators(frame, majority=3, order=["m3"], resamples=100)
    assert result.annotators == [MAJORITY_ANNOTATOR, "m3", "m1", "m2"]
    humans = result.humans
    assert humans is not None
    assert humans.annotators == 12 and humans.personas == 3
    # 4 humans per persona -> 6 pairs per persona, only within the persona.
    assert humans.pairwise.height == 18
    assert (humans.pairwise["annotator_1"].str.slice(0, 2) == humans.pairwise["persona_id"]).all()
    # At most one flip per item among 4 humans: 3 of 4 always agree on the truth.
    assert humans.majority.items_with_majority == 12
    majority = result.labels.filter(pl.col("annotator") == MAJORITY_ANNOTATOR).sort("item_id")
    assert "".join(majority["label"]) == "".join(
        label for _, label in sorted(zip([i for _, i in ITEMS], LABELS["m1"], strict=True))
    )
    vs_m1 = result.pairwise.filter(
        (pl.col("annotator_1") == MAJORITY_ANNOTATOR) & (pl.col("annotator_2") == "m1")
    )
    assert vs_m1["kappa"][0] == pytest.approx(1.0)
    summary = result.summary()
    assert summary["humans"]["items_with_majority"] == 12
    assert summary["fleiss_kappa"] is not None


def test_human_fleiss_counts_raters_per_item() -> None:
    result = compare_annotators(pl.concat([_frame(LABELS), _humans()]), resamples=20)
    humans = result.humans
    assert humans is not None
    counts = (
        _humans()
        .group_by("persona_id", "item_id")
        .agg((pl.col("label") == "A").sum().alias("a"), (pl.col("label") == "B").sum().alias("b"))
        .select("a", "b")
        .to_numpy()
    )
    assert humans.fleiss.value == pytest.approx(fleiss_kappa(counts).value)


def test_one_annotator_is_an_error() -> None:
    with pytest.raises(InputError, match="at least two annotators"):
        compare_annotators(_frame({"m1": LABELS["m1"]}))


def test_pairs_follow_the_annotator_order() -> None:
    result = compare_annotators(_frame(LABELS), order=["m2", "m1"], resamples=10)
    pairs = result.pairwise.select("annotator_1", "annotator_2").rows()
    assert pairs == list(itertools.combinations(["m2", "m1", "m3"], 2))
