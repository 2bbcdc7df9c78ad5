"""Agreement between annotators on a long labels table (pure statistics, no model calls).

Raters are the model annotators (every row whose `annotator_kind` is not "human") plus, when
human labels are present, the `human-majority` annotator built from them. Individual humans
usually each see one persona, so they are compared with each other within a persona only (the
human-vs-human baseline), never in the rater matrix.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from persona_testbed.agreement.bootstrap import (
    AgreementEstimate,
    bootstrap_cohen_kappa,
    bootstrap_item_counts,
    bootstrap_mean,
)
from persona_testbed.agreement.labels import (
    HUMAN,
    MAJORITY_ANNOTATOR,
    MODEL,
    Majority,
    majority_vote,
    validate_labels,
)
from persona_testbed.agreement.statistics import (
    Agreement,
    UndefinedPolicy,
    cohen_kappa,
    contingency_table,
    fleiss_kappa,
    krippendorff_alpha,
)
from persona_testbed.errors import InputError
from persona_testbed.estimation import LEVEL, RESAMPLES
from persona_testbed.seeding import child_rng

PAIR_SCHEMA: dict[str, type[pl.DataType]] = {
    "annotator_1": pl.String,
    "annotator_2": pl.String,
    "kappa": pl.Float64,
    "kappa_low": pl.Float64,
    "kappa_high": pl.Float64,
    "degenerate": pl.Boolean,
    "observed_agreement": pl.Float64,
    "n_items": pl.Int64,
    "n_personas": pl.Int64,
    "persona_kappa_mean": pl.Float64,
    "persona_kappa_low": pl.Float64,
    "persona_kappa_high": pl.Float64,
    "personas_degenerate": pl.Int64,
}
PERSONA_SCHEMA: dict[str, type[pl.DataType]] = {
    "persona_id": pl.String,
    "annotator_1": pl.String,
    "annotator_2": pl.String,
    "kappa": pl.Float64,
    "degenerate": pl.Boolean,
    "n_items": pl.Int64,
}


@dataclass(frozen=True)
class AgreementSettings:
    undefined: UndefinedPolicy = "nan"
    resamples: int = RESAMPLES
    level: float = LEVEL
    seed: int = 0


@dataclass(frozen=True)
class HumanAgreement:
    """Human-vs-human baseline: pairwise kappa of annotators who role-played the same persona,
    and Fleiss' kappa / Krippendorff's alpha over all human ratings."""

    annotators: int
    personas: int
    majority: Majority
    pairwise: pl.DataFrame
    mean_pairwise_kappa: AgreementEstimate
    fleiss: AgreementEstimate
    alpha: AgreementEstimate

    def summary(self) -> dict[str, Any]:
        return {
            "annotators": self.annotators,
            "personas": self.personas,
            "majority_threshold": self.majority.threshold,
            "items": self.majority.items,
            "items_with_majority": self.majority.items_with_majority,
            "pairwise_kappa_within_persona": self.mean_pairwise_kappa.as_dict(),
            "pairs_compared": self.pairwise.height,
            "fleiss_kappa": self.fleiss.as_dict(),
            "krippendorff_alpha": self.alpha.as_dict(),
        }


@dataclass(frozen=True)
class AgreementResult:
    """Everything `compare_annotators` measured."""

    annotators: list[str]
    labels: pl.DataFrame
    pairwise: pl.DataFrame
    per_persona: pl.DataFrame
    fleiss: AgreementEstimate | None
    alpha: AgreementEstimate | None
    humans: HumanAgreement | None
    settings: AgreementSettings = field(default_factory=AgreementSettings)

    def kappa_matrix(self) -> np.ndarray:
        """Annotators x annotators pooled Cohen's kappa (diagonal 1; NaN where undefined)."""
        index = {name: i for i, name in enumerate(self.annotators)}
        matrix = np.eye(len(self.annotators))
        for row in self.pairwise.iter_rows(named=True):
            i, j = index[row["annotator_1"]], index[row["annotator_2"]]
            value = math.nan if row["kappa"] is None else row["kappa"]
            matrix[i, j] = matrix[j, i] = value
        return matrix

    def summary(self) -> dict[str, Any]:
        return {
            "annotators": self.annotators,
            "items": int(self.labels.select("persona_id", "item_id").n_unique()),
            "personas": int(self.labels["persona_id"].n_unique()),
            "pairwise": [_clean(row) for row in self.pairwise.iter_rows(named=True)],
            "fleiss_kappa": None if self.fleiss is None else self.fleiss.as_dict(),
            "krippendorff_alpha": None if self.alpha is None else self.alpha.as_dict(),
            "humans": None if self.humans is None else self.humans.summary(),
            "undefined_kappa": self.settings.undefined,
            "bootstrap": {
                "resamples": self.settings.resamples,
                "level": self.settings.level,
                "unit": "persona",
                "seed": self.settings.seed,
            },
        }


def _clean(row: dict[str, Any]) -> dict[str, Any]:
    """JSON-ready: NaN -> None, floats rounded."""
    cleaned: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, float):
            value = None if math.isnan(value) else round(value, 6)
        cleaned[key] = value
    return cleaned


def _pair_labels(labels: pl.DataFrame, first: str, second: str) -> pl.DataFrame:
    keys = ["persona_id", "item_id"]
    one = labels.filter(pl.col("annotator") == first).select(*keys, pl.col("label").alias("l1"))
    two = labels.filter(pl.col("annotator") == second).select(*keys, pl.col("label").alias("l2"))
    return one.join(two, on=keys, how="inner").sort(keys)


def _persona_row(persona_id: Any, first: str, second: str, kappa: Agreement) -> dict[str, Any]:
    """One row of PERSONA_SCHEMA: the kappa of two annotators on one persona's items."""
    return {
        "persona_id": persona_id,
        "annotator_1": first,
        "annotator_2": second,
        "kappa": kappa.value,
        "degenerate": kappa.degenerate,
        "n_items": kappa.n_items,
    }


def _compare_pair(
    labels: pl.DataFrame, first: str, second: str, settings: AgreementSettings
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    joined = _pair_labels(labels, first, second)
    l1, l2 = joined["l1"].to_list(), joined["l2"].to_list()
    point = cohen_kappa(l1, l2, undefined=settings.undefined)
    personas: list[dict[str, Any]] = []
    tables = []
    for (persona_id,), group in joined.group_by("persona_id", maintain_order=True):
        g1, g2 = group["l1"].to_list(), group["l2"].to_list()
        kappa = cohen_kappa(g1, g2, undefined=settings.undefined)
        personas.append(_persona_row(persona_id, first, second, kappa))
        tables.append(contingency_table(g1, g2))
    stacked = np.stack(tables) if tables else np.zeros((0, 2, 2), dtype=np.int64)
    pooled = bootstrap_cohen_kappa(
        stacked,
        point,
        child_rng(settings.seed, "bootstrap-kappa", first, second),
        undefined=settings.undefined,
        resamples=settings.resamples,
        level=settings.level,
    )
    persona_mean = bootstrap_mean(
        # An undefined kappa is never averaged, whatever value the policy reports for it.
        [math.nan if p["degenerate"] else p["kappa"] for p in personas],
        child_rng(settings.seed, "bootstrap-persona-kappa", first, second),
        resamples=settings.resamples,
        level=settings.level,
    )
    row = {
        "annotator_1": first,
        "annotator_2": second,
        "kappa": pooled.value,
        "kappa_low": pooled.low,
        "kappa_high": pooled.high,
        "degenerate": point.degenerate,
        "observed_agreement": float(np.mean(np.array(l1) == np.array(l2))) if l1 else None,
        "n_items": len(l1),
        "n_personas": len(personas),
        "persona_kappa_mean": persona_mean.value,
        "persona_kappa_low": persona_mean.low,
        "persona_kappa_high": persona_mean.high,
        "personas_degenerate": sum(p["degenerate"] for p in personas),
    }
    return row, personas


def _item_counts(labels: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """items x (A, B) counts and each item's persona code (the bootstrap cluster)."""
    counts = (
        labels.group_by("persona_id", "item_id")
        .agg((pl.col("label") == "A").sum().alias("a"), (pl.col("label") == "B").sum().alias("b"))
        .sort("persona_id", "item_id")
    )
    clusters = counts["persona_id"].rank("dense").cast(pl.Int64).to_numpy() - 1
    return counts.select("a", "b").to_numpy().astype(np.int64), clusters.astype(np.int64)


def _multi_rater(
    labels: pl.DataFrame, purpose: str, settings: AgreementSettings
) -> tuple[AgreementEstimate, AgreementEstimate]:
    counts, clusters = _item_counts(labels)

    def estimate(name: str, which: Callable[..., Agreement]) -> AgreementEstimate:
        return bootstrap_item_counts(
            counts,
            clusters,
            which,
            child_rng(settings.seed, f"bootstrap-{name}", purpose),
            undefined=settings.undefined,
            resamples=settings.resamples,
            level=settings.level,
        )

    return estimate("fleiss", fleiss_kappa), estimate("alpha", krippendorff_alpha)


def _human_agreement(
    humans: pl.DataFrame, majority: Majority, settings: AgreementSettings
) -> HumanAgreement:
    rows: list[dict[str, Any]] = []
    per_persona_mean: list[float] = []
    for (persona_id,), group in humans.group_by("persona_id", maintain_order=True):
        names = sorted(group["annotator"].unique().to_list())
        values = []
        for first, second in itertools.combinations(names, 2):
            joined = _pair_labels(group, first, second)
            kappa = cohen_kappa(
                joined["l1"].to_list(), joined["l2"].to_list(), undefined=settings.undefined
            )
            rows.append(_persona_row(persona_id, first, second, kappa))
            if kappa.defined and not kappa.degenerate:
                values.append(kappa.value)
        if values:
            per_persona_mean.append(float(np.mean(values)))
    mean = bootstrap_mean(
        per_persona_mean,
        child_rng(settings.seed, "bootstrap-human-kappa"),
        resamples=settings.resamples,
        level=settings.level,
    )
    fleiss, alpha = _multi_rater(humans, "humans", settings)
    return HumanAgreement(
        annotators=humans["annotator"].n_unique(),
        personas=humans["persona_id"].n_unique(),
        majority=majority,
        pairwise=pl.DataFrame(rows, schema=PERSONA_SCHEMA),
        mean_pairwise_kappa=mean,
        fleiss=fleiss,
        alpha=alpha,
    )


def compare_annotators(
    labels: pl.DataFrame,
    *,
    order: Sequence[str] | None = None,
    majority: int | None = None,
    undefined: UndefinedPolicy = "nan",
    resamples: int = RESAMPLES,
    level: float = LEVEL,
    seed: int = 0,
) -> AgreementResult:
    """Pairwise Cohen's kappa (pooled and per persona, with bootstrap CIs over personas),
    Fleiss' kappa and Krippendorff's alpha when there are more than two raters, and the
    human-vs-human baseline with majority-vote labels when human labels are present.

    `labels` needs `persona_id`, `item_id`, `annotator`, `label` ("A"/"B"); rows whose
    `annotator_kind` is "human" are human labels (a missing column means all are raters).
    `order` lists raters first in that order (others follow); `majority` is the number of
    agreeing humans a majority label needs (default: more than half of the item's votes)."""
    labels = validate_labels(labels, "labels")
    if "annotator_kind" not in labels.columns:
        labels = labels.with_columns(pl.lit(MODEL).alias("annotator_kind"))
    settings = AgreementSettings(undefined, resamples, level, seed)
    is_human = pl.col("annotator_kind") == HUMAN
    humans = labels.filter(is_human)
    raters = labels.filter(~is_human | pl.col("annotator_kind").is_null()).select(
        "annotator", "annotator_kind", "persona_id", "item_id", "label"
    )
    human_result = None
    if humans.height:
        votes = majority_vote(humans, majority)
        human_result = _human_agreement(humans, votes, settings)
        raters = pl.concat([raters, votes.labels.select(raters.columns)], how="vertical_relaxed")
    names = _rater_order(raters, order)
    if len(names) < 2:
        raise InputError(
            f"labels: agreement needs at least two annotators (found: {', '.join(names) or 'none'})"
        )
    pair_rows: list[dict[str, Any]] = []
    persona_rows: list[dict[str, Any]] = []
    for first, second in itertools.combinations(names, 2):
        row, personas = _compare_pair(raters, first, second, settings)
        pair_rows.append(row)
        persona_rows.extend(personas)
    fleiss = alpha = None
    if len(names) > 2:
        fleiss, alpha = _multi_rater(raters, "raters", settings)
    return AgreementResult(
        annotators=names,
        labels=raters,
        pairwise=pl.DataFrame(pair_rows, schema=PAIR_SCHEMA),
        per_persona=pl.DataFrame(persona_rows, schema=PERSONA_SCHEMA),
        fleiss=fleiss,
        alpha=alpha,
        humans=human_result,
        settings=settings,
    )


def _rater_order(raters: pl.DataFrame, order: Sequence[str] | None) -> list[str]:
    present = raters["annotator"].unique(maintain_order=True).to_list()
    first = [MAJORITY_ANNOTATOR] if MAJORITY_ANNOTATOR in present else []
    first += [name for name in order or () if name in present and name not in first]
    return first + [name for name in present if name not in first]
