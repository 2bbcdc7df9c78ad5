"""Agreement statistics on binary A/B labels, from scikit-learn, statsmodels and krippendorff,
plus the closed-form prevalence-robust companions PABAK and Gwet's AC1.

Degenerate case: when every rating is the same single category, chance agreement is 1 and
Cohen's kappa, Fleiss' kappa and Krippendorff's alpha are all 0/0 (undefined). The `undefined`
policy decides what is reported: "nan" (default) reports it as missing, flagged `degenerate`
so it is counted and never averaged; "one" reports 1.0 (the raters agree on every item) in the
per-pair rows, for comparison with tools that do so, and is still left out of every mean.
Reporting 1.0 by default biased means upwards: independent raters with P(A) = 0.9 over 10
items average kappa 0.12 with it, 0.00 without (tests/agreement/test_statistics.py).
This is the only undefined case: two raters who each use one category but different ones get
kappa 0 (agreement no better than chance), which the libraries compute themselves.

Kappa depends on prevalence: with skewed labels it is low even when raters agree on most items
(and undefined when they always say the same thing). PABAK (prevalence- and bias-adjusted
kappa, Byrt, Bishop & Carlin 1993) is 2 * observed agreement - 1 for two categories, a rescaled
observed agreement that no prevalence moves. Gwet's AC1 (Gwet 2008) uses chance agreement
2 * pi * (1 - pi), pi the mean share of "A"; it is defined whenever there is an item, but
independent raters with skewed labels get a high AC1 (about 0.76 at P(A) = 0.9), so it is
reported, not used to rank. No well-kept library for them is available to this project (irrCAC
is not on its package index), and both are one line: they are written out here and checked
against hand-computed values.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import krippendorff
import numpy as np
import numpy.typing as npt
from sklearn.metrics import cohen_kappa_score, confusion_matrix
from statsmodels.stats.inter_rater import cohens_kappa as statsmodels_cohens_kappa
from statsmodels.stats.inter_rater import fleiss_kappa as statsmodels_fleiss_kappa

CATEGORIES: tuple[str, str] = ("A", "B")
UndefinedPolicy = Literal["one", "nan"]

Counts = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Agreement:
    """One agreement statistic over `n_items` items; `degenerate` marks the 0/0 case."""

    value: float
    n_items: int
    degenerate: bool = False

    @property
    def defined(self) -> bool:
        return not math.isnan(self.value)


def _undefined(policy: UndefinedPolicy) -> float:
    return 1.0 if policy == "one" else math.nan


def _single_category(counts_per_category: npt.ArrayLike) -> bool:
    return int(np.count_nonzero(np.asarray(counts_per_category))) == 1


def contingency_table(labels_1: Sequence[str], labels_2: Sequence[str]) -> Counts:
    """2x2 table of (rater 1 label, rater 2 label) counts, rows and columns in A, B order."""
    if len(labels_1) == 0:
        return np.zeros((2, 2), dtype=np.int64)
    table = confusion_matrix(list(labels_1), list(labels_2), labels=list(CATEGORIES))
    return np.asarray(table, dtype=np.int64)


def cohen_kappa(
    labels_1: Sequence[str], labels_2: Sequence[str], *, undefined: UndefinedPolicy = "nan"
) -> Agreement:
    """Cohen's kappa of two raters over the same items (scikit-learn)."""
    if len(labels_1) != len(labels_2):
        raise ValueError(f"rater label lists differ in length: {len(labels_1)} vs {len(labels_2)}")
    n = len(labels_1)
    if n == 0:
        return Agreement(math.nan, 0)
    degenerate = _single_category(np.bincount(_codes([*labels_1, *labels_2]), minlength=2))
    if degenerate:
        return Agreement(_undefined(undefined), n, degenerate=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = cohen_kappa_score(list(labels_1), list(labels_2), labels=list(CATEGORIES))
    return Agreement(float(value), n)


def kappa_from_table(table: Counts, *, undefined: UndefinedPolicy = "nan") -> Agreement:
    """Cohen's kappa from a 2x2 contingency table (statsmodels; fast, for the bootstrap)."""
    n = int(table.sum())
    if n == 0:
        return Agreement(math.nan, 0)
    if _single_category(table.sum(axis=0) + table.sum(axis=1)):
        return Agreement(_undefined(undefined), n, degenerate=True)
    value = statsmodels_cohens_kappa(table, return_results=False)
    return Agreement(float(value), n)


def _codes(labels: Sequence[str]) -> npt.NDArray[np.int64]:
    index = {category: code for code, category in enumerate(CATEGORIES)}
    try:
        return np.fromiter((index[label] for label in labels), dtype=np.int64, count=len(labels))
    except KeyError as exc:
        raise ValueError(f"label {exc.args[0]!r} is not one of {', '.join(CATEGORIES)}") from None


def category_counts(ratings: npt.ArrayLike) -> Counts:
    """Items x raters matrix of labels ("A"/"B", None where a rater did not rate the item) ->
    items x categories counts (the table Fleiss' kappa and Krippendorff's alpha take)."""
    matrix = np.asarray(ratings, dtype=object)
    if matrix.size == 0:
        return np.zeros((0, len(CATEGORIES)), dtype=np.int64)
    return np.stack([(matrix == category).sum(axis=1) for category in CATEGORIES], axis=1).astype(
        np.int64
    )


def fleiss_kappa(counts: Counts, *, undefined: UndefinedPolicy = "nan") -> Agreement:
    """Fleiss' kappa (statsmodels) over items rated by the same number of raters.

    `counts` is items x categories; rows with a different total from the most common one are
    left out, since Fleiss' kappa needs the same number of ratings per item.
    """
    counts = np.asarray(counts, dtype=np.int64)
    totals = counts.sum(axis=1)
    rated = counts[totals >= 2]
    if rated.shape[0] == 0:
        return Agreement(math.nan, 0)
    common = int(np.bincount(rated.sum(axis=1)).argmax())
    rated = rated[rated.sum(axis=1) == common]
    if _single_category(rated.sum(axis=0)):
        return Agreement(_undefined(undefined), rated.shape[0], degenerate=True)
    value = statsmodels_fleiss_kappa(rated, method="fleiss")
    return Agreement(float(value), rated.shape[0])


def krippendorff_alpha(counts: Counts, *, undefined: UndefinedPolicy = "nan") -> Agreement:
    """Krippendorff's alpha, nominal level (the `krippendorff` package), from items x
    categories counts; items with fewer than two ratings cannot be paired and are left out."""
    counts = np.asarray(counts, dtype=np.int64)
    pairable = counts[counts.sum(axis=1) >= 2]
    if pairable.shape[0] == 0:
        return Agreement(math.nan, 0)
    if _single_category(pairable.sum(axis=0)):
        return Agreement(_undefined(undefined), pairable.shape[0], degenerate=True)
    value = krippendorff.alpha(value_counts=pairable, level_of_measurement="nominal")
    return Agreement(float(value), pairable.shape[0])


def _table_of(labels_1: Sequence[str], labels_2: Sequence[str]) -> Counts:
    if len(labels_1) != len(labels_2):
        raise ValueError(f"rater label lists differ in length: {len(labels_1)} vs {len(labels_2)}")
    _codes([*labels_1, *labels_2])  # a clear error for a label other than A/B
    return contingency_table(labels_1, labels_2)


def pabak_from_table(table: Counts) -> Agreement:
    """PABAK of a 2x2 table: (q * p_o - 1) / (q - 1) = 2 * p_o - 1 for q = 2 categories."""
    n = int(table.sum())
    if n == 0:
        return Agreement(math.nan, 0)
    observed = float(np.trace(table)) / n
    return Agreement(2.0 * observed - 1.0, n)


def gwet_ac1_from_table(table: Counts) -> Agreement:
    """Gwet's AC1 of a 2x2 table: (p_o - p_e) / (1 - p_e) with p_e = 2 * pi * (1 - pi), pi the
    share of "A" over both raters' labels. p_e <= 0.5, so AC1 is defined for every table."""
    n = int(table.sum())
    if n == 0:
        return Agreement(math.nan, 0)
    observed = float(np.trace(table)) / n
    share_a = float(table[0, :].sum() + table[:, 0].sum()) / (2 * n)
    chance = 2.0 * share_a * (1.0 - share_a)
    return Agreement((observed - chance) / (1.0 - chance), n)


def pabak(labels_1: Sequence[str], labels_2: Sequence[str]) -> Agreement:
    """Prevalence- and bias-adjusted kappa of two raters over the same items."""
    return pabak_from_table(_table_of(labels_1, labels_2))


def gwet_ac1(labels_1: Sequence[str], labels_2: Sequence[str]) -> Agreement:
    """Gwet's AC1 of two raters over the same items."""
    return gwet_ac1_from_table(_table_of(labels_1, labels_2))
