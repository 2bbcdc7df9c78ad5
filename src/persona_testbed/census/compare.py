"""Census comparison (paper Fig. 2 vs Fig. 13): persona shares against the weighted population.

For each census attribute the personas' category shares are compared with reference shares:

- `pums`: the PWGTP-weighted person records the personas were drawn from;
- `raked`: the same records under the raked weights (only when raking was used);
- `target`: the raking target itself (age bracket, sex, race group of its universe).

Each comparison reports the total variation distance (TVD), a chi-square goodness-of-fit test
(categories with expected count under 5 pooled) and, for reference, the TVD that i.i.d. sampling
noise alone gives at this N (simulated multinomial draws from the reference shares).

Rows of attributes the sampling design fixes are marked `controlled`: with PPS sampling, age
bracket, sex and race are implicit strata (and, when raked, raking margins), so their near-zero
TVD against the weights the personas were drawn from (and against the target) is built in and
is no evidence of fidelity. Fidelity is judged on the other attributes and on two-way joint
tables (`joint_reference`, `compare_joints`): marginals can match while joints fail.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy.stats import chi2 as chi2_distribution

from persona_testbed.census.categories import (
    INCOME_BRACKETS,
    RACE_ETHNICITY_BY_RACE,
    RACE_ETHNICITY_GROUPS,
    RACE_GROUP_BY_RACE,
    range_label,
)
from persona_testbed.census.raking import RakeTarget
from persona_testbed.contracts import CENSUS_ATTRIBUTES
from persona_testbed.contracts.brackets import AGE_BRACKETS

NOT_APPLICABLE = "Not applicable"
TARGET_ATTRIBUTES = {
    "age_bracket": "age",
    "sex": "sex",
    "race_group": "race",
    "race_ethnicity": "race",
}
NOISE_REPLICATES = 400
# The comparison attributes the PPS design stratifies on (state, the fourth stratum, is not a
# persona attribute).
STRATA_ATTRIBUTES = ("age", "sex", "race")
# Two-way tables whose joint fidelity is checked (issue: joints can fail while marginals match).
JOINT_PAIRS: tuple[tuple[str, str], ...] = (
    ("age", "education"),
    ("sex", "occupation category"),
    ("race", "income"),
    ("age", "marital status"),
    ("education", "income"),
)
JOINT_COLUMNS = ("table", "reference", "category_a", "category_b", "share")


def comparison_categories(frame: pl.DataFrame) -> pl.DataFrame:
    """One comparison category per census attribute: age and income in brackets, nulls as
    "Not applicable", everything else as its label. Works on the pool and on personas alike."""
    exprs: list[pl.Expr] = []
    for attribute in CENSUS_ATTRIBUTES:
        column = pl.col(attribute)
        if attribute == "age":
            column = range_label(column, AGE_BRACKETS)
        elif attribute == "income":
            column = range_label(column.cast(pl.Int64, strict=False), INCOME_BRACKETS)
        exprs.append(column.cast(pl.String).fill_null(NOT_APPLICABLE).alias(attribute))
    return frame.select(exprs)


def _category_codes(column: pl.Series) -> tuple[pl.Series, np.ndarray]:
    """(sorted distinct labels, each row's index into them)."""
    labels = column.unique().sort()
    codes = column.replace_strict(labels, pl.int_range(labels.len(), eager=True)).to_numpy()
    return labels, codes


def reference_shares(
    pool: pl.DataFrame,
    base_weights: np.ndarray,
    raked_weights: np.ndarray | None,
    target: RakeTarget | None,
    target_margins: dict[str, dict[str, float]] | None = None,
) -> pl.DataFrame:
    """Long table (attribute, reference, universe_min_age, category, share) of the population
    the personas were drawn from, written next to the personas for `census-compare`.
    `target_margins` are the shares actually raked to (`RakeResult.margins`), when they differ
    from the target's.

    Sums use numpy's sequential bincount, not a parallel group-by, so float sums (raked
    weights) are bit-for-bit reproducible."""
    categories = comparison_categories(pool)
    parts: list[pl.DataFrame] = []
    references = [("pums", base_weights.astype(np.float64))]
    if raked_weights is not None:
        references.append(("raked", raked_weights.astype(np.float64)))
    for attribute in CENSUS_ATTRIBUTES:
        labels, codes = _category_codes(categories.get_column(attribute))
        for reference, weights in references:
            totals = np.bincount(codes, weights=weights, minlength=labels.len())
            parts.append(
                pl.DataFrame({"category": labels, "share": totals / totals.sum()}).select(
                    pl.lit(attribute).alias("attribute"),
                    pl.lit(reference).alias("reference"),
                    pl.lit(0, pl.Int64).alias("universe_min_age"),
                    "category",
                    "share",
                )
            )
    if target is not None:
        margins = target_margins if target_margins is not None else target.margins
        for dimension, shares_by_category in margins.items():
            parts.append(
                pl.DataFrame(
                    {
                        "attribute": TARGET_ATTRIBUTES[dimension],
                        "reference": "target",
                        "universe_min_age": target.min_age,
                        "category": list(shares_by_category),
                        "share": list(shares_by_category.values()),
                    },
                    schema={
                        "attribute": pl.String,
                        "reference": pl.String,
                        "universe_min_age": pl.Int64,
                        "category": pl.String,
                        "share": pl.Float64,
                    },
                )
            )
    return pl.concat(parts)


def persona_categories(
    personas: pl.DataFrame, attribute: str, reference: str, target_categories: set[str]
) -> pl.Series:
    """The personas' categories for one comparison (target races are the target's groups:
    the three disjoint groups of `us-2022`, or the six of a user's share target)."""
    categories = comparison_categories(personas).get_column(attribute)
    if reference == "target" and attribute == "race":
        scheme = (
            RACE_ETHNICITY_BY_RACE
            if target_categories <= set(RACE_ETHNICITY_GROUPS)
            else RACE_GROUP_BY_RACE
        )
        return categories.replace_strict(scheme, default=None)
    return categories


def controlled_pairs(sampling: str, draw_reference: str) -> set[tuple[str, str]]:
    """(attribute, reference) comparisons fixed by the design: the PPS strata against the
    weights the personas were drawn from and against the raking target."""
    if sampling != "pps":
        return set()
    return {(a, r) for a in STRATA_ATTRIBUTES for r in (draw_reference, "target")}


@dataclass(frozen=True)
class GoodnessOfFit:
    tvd: float
    chi2: float | None
    dof: int | None
    p_value: float | None


def total_variation(observed: np.ndarray, expected: np.ndarray) -> float:
    return float(0.5 * np.abs(observed - expected).sum())


def goodness_of_fit(counts: np.ndarray, shares: np.ndarray) -> GoodnessOfFit:
    """TVD between the observed shares and `shares`, plus Pearson's chi-square test. Categories
    with expected count < 5 are pooled into one bin; a pool still under 5 joins the smallest
    other bin."""
    n = float(counts.sum())
    tvd = total_variation(counts / n, shares) if n else float("nan")
    expected = shares * n
    small = expected < 5
    obs = list(counts[~small].astype(np.float64))
    exp = list(expected[~small])
    pool_obs, pool_exp = float(counts[small].sum()), float(expected[small].sum())
    if pool_obs > 0 or pool_exp > 0:
        if pool_exp < 5 and exp:
            smallest = int(np.argmin(exp))
            obs[smallest] += pool_obs
            exp[smallest] += pool_exp
        else:
            obs.append(pool_obs)
            exp.append(pool_exp)
    if len(exp) < 2:
        return GoodnessOfFit(tvd=tvd, chi2=None, dof=None, p_value=None)
    observed, wanted = np.asarray(obs), np.asarray(exp)
    dof = len(wanted) - 1
    if np.any(wanted <= 0):  # observed records in a category the reference says is empty
        return GoodnessOfFit(tvd=tvd, chi2=float("inf"), dof=dof, p_value=0.0)
    statistic = float(((observed - wanted) ** 2 / wanted).sum())
    return GoodnessOfFit(
        tvd=tvd, chi2=statistic, dof=dof, p_value=float(chi2_distribution.sf(statistic, dof))
    )


def iid_noise_tvd(
    shares: np.ndarray, n: int, rng: np.random.Generator, replicates: int = NOISE_REPLICATES
) -> tuple[float, float]:
    """(mean, 95th percentile) TVD of n i.i.d. draws from `shares`: pure sampling noise."""
    if n <= 0:
        return float("nan"), float("nan")
    draws = rng.multinomial(n, shares / shares.sum(), size=replicates) / n
    tvds = 0.5 * np.abs(draws - shares).sum(axis=1)
    return float(tvds.mean()), float(np.quantile(tvds, 0.95))


def compare(
    personas: pl.DataFrame,
    reference: pl.DataFrame,
    rng: np.random.Generator,
    controlled: set[tuple[str, str]] | None = None,
) -> pl.DataFrame:
    """One row per (attribute, reference): whether the design controls it, n, categories, TVD,
    chi-square, p, i.i.d. noise."""
    rows: list[dict[str, object]] = []
    keys = reference.select("attribute", "reference", "universe_min_age").unique(
        maintain_order=True
    )
    for attribute, ref, min_age in keys.iter_rows():
        table = reference.filter(
            (pl.col("attribute") == attribute) & (pl.col("reference") == ref)
        ).sort("category")
        subset = personas.filter(pl.col("age") >= min_age) if min_age else personas
        wanted = set(table.get_column("category").to_list())
        observed = persona_categories(subset, attribute, ref, wanted)
        counts_frame = (
            pl.DataFrame({"category": observed}).group_by("category").agg(pl.len().alias("count"))
        )
        merged = table.join(counts_frame, on="category", how="full", coalesce=True).sort("category")
        counts = merged.get_column("count").fill_null(0).to_numpy().astype(np.float64)
        shares = merged.get_column("share").fill_null(0.0).to_numpy().astype(np.float64)
        n = int(counts.sum())
        fit = goodness_of_fit(counts, shares)
        noise_mean, noise_p95 = iid_noise_tvd(shares, n, rng)
        rows.append(
            {
                "attribute": attribute,
                "reference": ref,
                "controlled": (attribute, ref) in (controlled or set()),
                "n": n,
                "categories": int((shares > 0).sum()),
                "tvd": fit.tvd,
                "chi2": fit.chi2,
                "dof": fit.dof,
                "p_value": fit.p_value,
                "iid_noise_tvd_mean": noise_mean,
                "iid_noise_tvd_p95": noise_p95,
            }
        )
    return pl.DataFrame(rows, schema_overrides={"chi2": pl.Float64, "p_value": pl.Float64})


def persona_shares(personas: pl.DataFrame, reference: pl.DataFrame) -> pl.DataFrame:
    """The personas' shares in the same long layout as `reference` (for the plots)."""
    parts = []
    keys = reference.select("attribute", "reference", "universe_min_age").unique(
        maintain_order=True
    )
    for attribute, ref, min_age in keys.iter_rows():
        subset = personas.filter(pl.col("age") >= min_age) if min_age else personas
        wanted = set(
            reference.filter((pl.col("attribute") == attribute) & (pl.col("reference") == ref))
            .get_column("category")
            .to_list()
        )
        observed = persona_categories(subset, attribute, ref, wanted)
        counts = pl.DataFrame({"category": observed}).group_by("category").agg(pl.len())
        total = counts.get_column("len").sum()
        parts.append(
            counts.select(
                pl.lit(attribute).alias("attribute"),
                pl.lit(ref).alias("reference"),
                pl.col("category"),
                (pl.col("len") / total).alias("share"),
            )
        )
    return pl.concat(parts)


def number(value: object, digits: int = 4) -> str:
    """A table cell: '-' for missing, 4 decimals (significant digits below 0.001)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1e-3 and value else f"{value:.{digits}f}"
    return str(value)


def to_markdown(table: pl.DataFrame, header: str) -> str:
    lines = [
        header,
        "",
        "| attribute | reference | design | n | categories | TVD | chi2 | dof | p-value "
        "| i.i.d. noise TVD (mean) | i.i.d. noise TVD (95%) |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]

    for row in table.iter_rows(named=True):
        lines.append(
            f"| {row['attribute']} | {row['reference']} "
            f"| {'controlled' if row.get('controlled') else ''} | {row['n']} | {row['categories']} "
            f"| {number(row['tvd'])} | {number(row['chi2'], 2)} | {number(row['dof'])} "
            f"| {number(row['p_value'])} | {number(row['iid_noise_tvd_mean'])} "
            f"| {number(row['iid_noise_tvd_p95'])} |"
        )
    return "\n".join(lines) + "\n"
