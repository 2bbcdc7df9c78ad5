"""Agreement statistics on binary A/B labels, from scikit-learn, statsmodels and krippendorff.

Degenerate case: when every rating is the same single category, chance agreement is 1 and
Cohen's kappa, Fleiss' kappa and Krippendorff's alpha are all 0/0 (undefined). The `undefined`
policy decides what is reported: "one" (default) reports 1.0, since the raters agree on every
item, and flags the value as degenerate so it can be counted or excluded; "nan" reports NaN.
This is the only undefined case: two raters who each use one category but different ones get
kappa 0 (agreement no better than chance), which the libraries compute themselves.
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
    labels_1: Sequence[str], labels_2: Sequence[str], *, undefined: UndefinedPolicy = "one"
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


def kappa_from_table(table: Counts, *, undefined: UndefinedPolicy = "one") -> Agreement:
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


def fleiss_kappa(counts: Counts, *, undefined: UndefinedPolicy = "one") -> Agreement:
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


def krippendorff_alpha(counts: Counts, *, undefined: UndefinedPolicy = "one") -> Agreement:
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
