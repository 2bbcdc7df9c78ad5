"""Joint fidelity: two-way tables of the personas against the weighted pool they came from.

Marginals can match while joints fail (an audit of another census-based persona set found
age x military service and sex x occupation flattened). Drawing whole census records keeps the
joints by design; these tables check that, and that the LLM consistency judge, which prunes
records after the draw, does not distort them. Each table's TVD stands next to the TVD that
i.i.d. draws of the same N from the pool's joint shares give (simulated, seeded): a persona TVD
inside that noise band is what sampling alone produces.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from persona_testbed.census.compare import (
    JOINT_COLUMNS,
    JOINT_PAIRS,
    NOISE_REPLICATES,
    comparison_categories,
    iid_noise_tvd,
    number,
    total_variation,
)

SEPARATOR = " x "


def table_name(first: str, second: str) -> str:
    return f"{first}{SEPARATOR}{second}"


def joint_reference(pool: pl.DataFrame, weights: np.ndarray, reference: str) -> pl.DataFrame:
    """Long table (table, reference, category_a, category_b, share) of the pool's weighted
    two-way shares for every pair of JOINT_PAIRS. Sums use numpy's sequential bincount so the
    file is bit-for-bit reproducible."""
    categories = comparison_categories(pool)
    weights = weights.astype(np.float64)
    parts = []
    for first, second in JOINT_PAIRS:
        cells = categories.select(
            pl.col(first).alias("category_a"), pl.col(second).alias("category_b")
        )
        distinct = cells.unique().sort("category_a", "category_b")
        codes = (
            cells.with_row_index("row")
            .join(distinct.with_row_index("cell"), on=["category_a", "category_b"], how="left")
            .sort("row")
            .get_column("cell")
            .to_numpy()
        )
        totals = np.bincount(codes, weights=weights, minlength=distinct.height)
        parts.append(
            distinct.with_columns(
                pl.lit(table_name(first, second)).alias("table"),
                pl.lit(reference).alias("reference"),
                pl.Series("share", totals / totals.sum(), dtype=pl.Float64),
            ).select(JOINT_COLUMNS)
        )
    return pl.concat(parts)


def _cell_counts(categories: pl.DataFrame, first: str, second: str) -> pl.DataFrame:
    return (
        categories.select(pl.col(first).alias("category_a"), pl.col(second).alias("category_b"))
        .group_by("category_a", "category_b")
        .agg(pl.len().alias("count"))
    )


def _tvd(categories: pl.DataFrame, shares: pl.DataFrame, first: str, second: str) -> float:
    """TVD of the personas' cell shares (`categories`: their comparison categories) against
    `shares` (cells missing on either side are 0)."""
    merged = shares.join(
        _cell_counts(categories, first, second),
        on=["category_a", "category_b"],
        how="full",
        coalesce=True,
    )
    counts = merged.get_column("count").fill_null(0).to_numpy().astype(np.float64)
    wanted = merged.get_column("share").fill_null(0.0).to_numpy().astype(np.float64)
    return total_variation(counts / counts.sum(), wanted) if counts.sum() else float("nan")


def compare_joints(
    personas: pl.DataFrame,
    reference: pl.DataFrame,
    rng: np.random.Generator,
    before_pruning: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """One row per two-way table: TVD of the personas (and of the sample before the LLM judge
    pruned it, when given) against the pool, with the i.i.d. noise TVD at the same N."""
    rows: list[dict[str, object]] = []
    categories = comparison_categories(personas)
    before_categories = None if before_pruning is None else comparison_categories(before_pruning)
    for first, second in JOINT_PAIRS:
        name = table_name(first, second)
        table = reference.filter(pl.col("table") == name)
        if table.is_empty():
            continue
        shares = table.select("category_a", "category_b", "share")
        probabilities = shares.get_column("share").to_numpy().astype(np.float64)
        noise_mean, noise_p95 = iid_noise_tvd(probabilities, personas.height, rng)
        tvd = _tvd(categories, shares, first, second)
        row: dict[str, object] = {
            "table": name,
            "reference": table.get_column("reference").item(0),
            "cells": int((probabilities > 0).sum()),
            "n": personas.height,
            "tvd": tvd,
            "iid_noise_tvd_mean": noise_mean,
            "iid_noise_tvd_p95": noise_p95,
            "above_iid_p95": bool(tvd > noise_p95),
            "n_before_pruning": None,
            "tvd_before_pruning": None,
            "iid_noise_tvd_mean_before_pruning": None,
        }
        if before_pruning is not None and before_categories is not None:
            before_mean, _ = iid_noise_tvd(probabilities, before_pruning.height, rng)
            row.update(
                n_before_pruning=before_pruning.height,
                tvd_before_pruning=_tvd(before_categories, shares, first, second),
                iid_noise_tvd_mean_before_pruning=before_mean,
            )
        rows.append(row)
    schema = {
        "table": pl.String,
        "reference": pl.String,
        "cells": pl.Int64,
        "n": pl.Int64,
        "tvd": pl.Float64,
        "iid_noise_tvd_mean": pl.Float64,
        "iid_noise_tvd_p95": pl.Float64,
        "above_iid_p95": pl.Boolean,
        "n_before_pruning": pl.Int64,
        "tvd_before_pruning": pl.Float64,
        "iid_noise_tvd_mean_before_pruning": pl.Float64,
    }
    return pl.DataFrame(rows, schema=schema)


def joints_markdown(table: pl.DataFrame, pruning: str) -> str:
    """The joint table as Markdown, after the comparison table."""
    lines = [
        "## Joint distributions (two-way tables)",
        "",
        "TVD of the personas' two-way cell shares against the weighted pool they were drawn "
        "from, next to the TVD of i.i.d. draws of the same N from the pool's joint shares "
        f"({NOISE_REPLICATES} simulated draws: mean and 95th percentile). A TVD above the "
        "i.i.d. 95th percentile means the joint is further off than sampling noise. "
        f"{pruning}",
        "",
        "| table | reference | cells | n | TVD | i.i.d. TVD (mean) | i.i.d. TVD (95%) "
        "| above i.i.d. 95% | n before pruning | TVD before pruning "
        "| i.i.d. TVD before pruning (mean) |",
        "|---|---|---:|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    for row in table.iter_rows(named=True):
        lines.append(
            f"| {row['table']} | {row['reference']} | {row['cells']} | {row['n']} "
            f"| {number(row['tvd'])} | {number(row['iid_noise_tvd_mean'])} "
            f"| {number(row['iid_noise_tvd_p95'])} | {'yes' if row['above_iid_p95'] else 'no'} "
            f"| {number(row['n_before_pruning'])} | {number(row['tvd_before_pruning'])} "
            f"| {number(row['iid_noise_tvd_mean_before_pruning'])} |"
        )
    return "\n".join(lines) + "\n"


def joint_summary(table: pl.DataFrame) -> str:
    """Plain-text joint table for the terminal."""
    before = table.get_column("tvd_before_pruning").null_count() < table.height
    head = f"{'two-way table':<34} {'n':>5} {'TVD':>7} {'iid mean':>8} {'iid 95%':>8}"
    lines = [head + (f" {'TVD before pruning':>18}" if before else "")]
    for row in table.iter_rows(named=True):
        line = (
            f"{row['table']:<34} {row['n']:>5} {row['tvd']:>7.4f} "
            f"{row['iid_noise_tvd_mean']:>8.4f} {row['iid_noise_tvd_p95']:>8.4f}"
        )
        if before:
            line += f" {number(row['tvd_before_pruning']):>18}"
        if row["above_iid_p95"]:
            line += "  above i.i.d. 95%"
        lines.append(line)
    return "\n".join(lines)
