"""Leave-one-out influence: Cohen's kappa between the P and P+a annotators of every pair, and
its distribution per attribute. Lower kappa = the attribute changes more of the persona's
choices = more influence (paper §4.1, Fig. 5)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl

from persona_testbed.agreement.bootstrap import LEVEL, RESAMPLES, bootstrap_mean
from persona_testbed.agreement.statistics import UndefinedPolicy, cohen_kappa
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
    "mean_abs_delta_p": pl.Float64,
    "n_items": pl.Int64,
}


def pair_kappas(labels: pl.DataFrame, *, undefined: UndefinedPolicy = "one") -> pl.DataFrame:
    """One row per (annotator model, pair): kappa between the two roles over the pair's items,
    their raw agreement, and the mean |p_A(P+a) - p_A(P)| (a continuous companion to kappa)."""
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
        l0, l1 = group["l0"].to_list(), group["l1"].to_list()
        kappa = cohen_kappa(l0, l1, undefined=undefined)
        rows.append(
            {
                "annotator": annotator,
                "attribute": attribute,
                "pair_id": pair_id,
                "kappa": kappa.value,
                "degenerate": kappa.degenerate,
                "observed_agreement": float(np.mean(np.array(l0) == np.array(l1))),
                "mean_abs_delta_p": float(
                    np.mean(np.abs(group["p1"].to_numpy() - group["p0"].to_numpy()))
                ),
                "n_items": kappa.n_items,
            }
        )
    return pl.DataFrame(rows, schema=PAIR_KAPPA_SCHEMA)


def attribute_table(
    kappas: pl.DataFrame,
    *,
    seed: int = 0,
    resamples: int = RESAMPLES,
    level: float = LEVEL,
) -> pl.DataFrame:
    """Per (annotator, attribute): the distribution of pair kappas (mean with a bootstrap CI over
    pairs, quartiles, range), degenerate and undefined counts, and the influence rank within
    the annotator (1 = lowest mean kappa = most influential)."""
    rows: list[dict[str, Any]] = []
    for (annotator, attribute), group in kappas.group_by(
        "annotator", "attribute", maintain_order=True
    ):
        values = group["kappa"].fill_nan(None).drop_nulls().to_numpy()
        estimate = bootstrap_mean(
            values.tolist(),
            child_rng(seed, "bootstrap-loo", annotator, attribute),
            resamples=resamples,
            level=level,
        )
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
                "observed_agreement": group["observed_agreement"].mean(),
                "mean_abs_delta_p": group["mean_abs_delta_p"].mean(),
                "items_per_pair": group["n_items"].mean(),
            }
        )
    table = pl.DataFrame(rows, infer_schema_length=None)
    if table.is_empty():
        return table
    # Rank by mean kappa (undefined last), ties broken by the larger probability shift.
    ordered = table.sort(
        "annotator",
        pl.col("kappa_mean").fill_null(math.inf),
        pl.col("mean_abs_delta_p"),
        "attribute",
        descending=[False, False, True, False],
    )
    return ordered.with_columns(
        pl.int_range(1, pl.len() + 1).over("annotator").cast(pl.Int64).alias("influence_rank")
    )


def markdown_table(table: pl.DataFrame) -> str:
    """The per-attribute table as Markdown (most influential first)."""

    def number(value: Any) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    lines = [
        "| annotator | rank | attribute | pairs | mean kappa (95% CI) | median | IQR "
        "| degenerate | mean abs dP(A) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in table.iter_rows(named=True):
        ci = (
            f" ({number(row['kappa_low'])}, {number(row['kappa_high'])})"
            if row["kappa_low"] is not None
            else ""
        )
        lines.append(
            f"| {row['annotator']} | {row['influence_rank']} | {row['attribute']} "
            f"| {row['n_pairs']} | {number(row['kappa_mean'])}{ci} | {number(row['kappa_median'])} "
            f"| {number(row['kappa_q1'])} to {number(row['kappa_q3'])} "
            f"| {row['pairs_degenerate']} | {number(row['mean_abs_delta_p'])} |"
        )
    return "\n".join(lines) + "\n"
