"""Leave-one-out influence: agreement between the P and P+a annotators of every pair, and its
distribution per attribute (paper §4.1, Fig. 5).

Per pair: Cohen's kappa (the paper's statistic), observed agreement, PABAK, Gwet's AC1 and the
mean |p_A(P+a) - p_A(P)|, over the items both roles labelled (ties and undecided items are left
out and counted). Influence is ranked on PABAK = 2 * observed agreement - 1, the share of
choices the attribute did not change, which no label prevalence moves: kappa is undefined for
pairs whose labels never vary and low for skewed labels even when few choices change, so a
kappa ranking rewards (or punishes) prevalence rather than influence. Both roles are the same
model with almost the same prompt, not independent raters, so there is no chance agreement to
correct for. Ties in PABAK are broken by the larger probability shift; kappa is reported beside.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from persona_testbed.agreement.bootstrap import bootstrap_mean
from persona_testbed.agreement.statistics import (
    UndefinedPolicy,
    cohen_kappa,
    contingency_table,
    gwet_ac1_from_table,
    pabak_from_table,
)
from persona_testbed.estimation import LEVEL, RESAMPLES
from persona_testbed.seeding import child_rng

WITHOUT = "without"  # the annotator role-playing P
WITH = "with"  # the annotator role-playing P+a

PAIR_KAPPA_SCHEMA: dict[str, type[pl.DataType]] = {
    "annotator": pl.String,
    "attribute": pl.String,
    "pair_id": pl.String,
    "kappa": pl.Float64,
    "degenerate": pl.Boolean,
    "observed_agreement": pl.Float64,
    "pabak": pl.Float64,
    "ac1": pl.Float64,
    "mean_abs_delta_p": pl.Float64,
    "n_items": pl.Int64,
    "items_unlabelled": pl.Int64,
}


def pair_kappas(labels: pl.DataFrame, *, undefined: UndefinedPolicy = "nan") -> pl.DataFrame:
    """One row per (annotator model, pair): kappa between the two roles over the items both
    labelled, their raw agreement, PABAK, AC1, and the mean |p_A(P+a) - p_A(P)| (a continuous
    companion); `items_unlabelled` counts items left out because a role tied or was undecided.
    The statistics are NaN for a pair with no item both roles labelled."""
    keys = ["annotator", "attribute", "pair_id", "item_id"]
    without = labels.filter(pl.col("role") == WITHOUT).select(
        *keys, pl.col("label").alias("l0"), pl.col("p_a").alias("p0")
    )
    with_ = labels.filter(pl.col("role") == WITH).select(
        *keys, pl.col("label").alias("l1"), pl.col("p_a").alias("p1")
    )
    joined = without.join(with_, on=keys, how="inner").sort(keys)
    rows: list[dict[str, Any]] = []
    for (annotator, attribute, pair_id), group in joined.group_by(
        "annotator", "attribute", "pair_id", maintain_order=True
    ):
        both = group.filter(pl.col("l0").is_not_null() & pl.col("l1").is_not_null())
        l0, l1 = both["l0"].to_list(), both["l1"].to_list()
        kappa = cohen_kappa(l0, l1, undefined=undefined)
        table = contingency_table(l0, l1)
        rows.append(
            {
                "annotator": annotator,
                "attribute": attribute,
                "pair_id": pair_id,
                "kappa": kappa.value,
                "degenerate": kappa.degenerate,
                "observed_agreement": float(np.mean(np.array(l0) == np.array(l1)))
                if l0
                else math.nan,
                "pabak": pabak_from_table(table).value,
                "ac1": gwet_ac1_from_table(table).value,
                # An undecided item's p_A is a placeholder (0.5), not a probability.
                "mean_abs_delta_p": float(
                    np.mean(np.abs(both["p1"].to_numpy() - both["p0"].to_numpy()))
                )
                if l0
                else math.nan,
                "n_items": kappa.n_items,
                "items_unlabelled": group.height - both.height,
            }
        )
    return pl.DataFrame(rows, schema=PAIR_KAPPA_SCHEMA)


def _finite(values: pl.Series) -> npt.NDArray[np.float64]:
    return values.fill_nan(None).drop_nulls().to_numpy().astype(np.float64)


def attribute_table(
    kappas: pl.DataFrame,
    *,
    seed: int = 0,
    resamples: int = RESAMPLES,
    level: float = LEVEL,
) -> pl.DataFrame:
    """Per (annotator, attribute): the distribution of pair kappas (mean with a bootstrap CI over
    pairs, quartiles, range) over the pairs whose kappa is defined, the degenerate (undefined)
    count, observed agreement, PABAK (mean with a CI), AC1 and mean |dP|, and the influence rank
    within the annotator (1 = lowest mean PABAK = most choices changed = most influential)."""
    rows: list[dict[str, Any]] = []
    for (annotator, attribute), group in kappas.group_by(
        "annotator", "attribute", maintain_order=True
    ):
        # Undefined kappas are never averaged, whatever value the policy reported for them.
        values = _finite(group.filter(~pl.col("degenerate"))["kappa"])
        estimate = bootstrap_mean(
            values.tolist(),
            child_rng(seed, "bootstrap-loo", annotator, attribute),
            resamples=resamples,
            level=level,
        )
        pabak = bootstrap_mean(
            _finite(group["pabak"]).tolist(),
            child_rng(seed, "bootstrap-loo-pabak", annotator, attribute),
            resamples=resamples,
            level=level,
        )
        ac1 = _finite(group["ac1"])
        quartiles = np.quantile(values, [0.0, 0.25, 0.5, 0.75, 1.0]) if values.size else None
        rows.append(
            {
                "annotator": annotator,
                "attribute": attribute,
                "n_pairs": group.height,
                "kappa_mean": estimate.value,
                "kappa_low": estimate.low,
                "kappa_high": estimate.high,
                "kappa_min": None if quartiles is None else float(quartiles[0]),
                "kappa_q1": None if quartiles is None else float(quartiles[1]),
                "kappa_median": None if quartiles is None else float(quartiles[2]),
                "kappa_q3": None if quartiles is None else float(quartiles[3]),
                "kappa_max": None if quartiles is None else float(quartiles[4]),
                "pairs_degenerate": int(group["degenerate"].sum()),
                "pairs_undefined": int(group.height - values.size),
                "observed_agreement": _mean_or_none(group["observed_agreement"]),
                "pabak_mean": pabak.value,
                "pabak_low": pabak.low,
                "pabak_high": pabak.high,
                "ac1_mean": float(ac1.mean()) if ac1.size else None,
                "mean_abs_delta_p": _mean_or_none(group["mean_abs_delta_p"]),
                "items_per_pair": group["n_items"].mean(),
                "items_unlabelled": int(group["items_unlabelled"].sum()),
            }
        )
    table = pl.DataFrame(rows, infer_schema_length=None)
    if table.is_empty():
        return table
    # Rank by mean PABAK (undefined last), ties broken by the larger probability shift.
    ordered = table.sort(
        "annotator",
        pl.col("pabak_mean").fill_null(math.inf),
        pl.col("mean_abs_delta_p").fill_null(-math.inf),
        "attribute",
        descending=[False, False, True, False],
    )
    return ordered.with_columns(
        pl.int_range(1, pl.len() + 1).over("annotator").cast(pl.Int64).alias("influence_rank")
    )


def _mean_or_none(values: pl.Series) -> float | None:
    finite = _finite(values)
    return float(finite.mean()) if finite.size else None


def markdown_table(table: pl.DataFrame) -> str:
    """The per-attribute table as Markdown (most influential first)."""

    def number(value: Any) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    def interval(row: dict[str, Any], name: str) -> str:
        low, high = row[f"{name}_low"], row[f"{name}_high"]
        return f" ({number(low)}, {number(high)})" if low is not None else ""

    lines = [
        "| annotator | rank | attribute | pairs | mean PABAK (95% CI) | observed agreement "
        "| mean abs dP(A) | mean kappa (95% CI) | kappa undefined | median kappa | kappa IQR "
        "| mean AC1 | items unlabelled |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in table.iter_rows(named=True):
        lines.append(
            f"| {row['annotator']} | {row['influence_rank']} | {row['attribute']} "
            f"| {row['n_pairs']} | {number(row['pabak_mean'])}{interval(row, 'pabak')} "
            f"| {number(row['observed_agreement'])} | {number(row['mean_abs_delta_p'])} "
            f"| {number(row['kappa_mean'])}{interval(row, 'kappa')} | {row['pairs_undefined']} "
            f"| {number(row['kappa_median'])} "
            f"| {number(row['kappa_q1'])} to {number(row['kappa_q3'])} "
            f"| {number(row['ac1_mean'])} | {row['items_unlabelled']} |"
        )
    return "\n".join(lines) + "\n"
