"""Age brackets shared by the census stage (decoding, raking, comparison) and the persona
slices of the bench and align stages, and the attributes those slices report by default."""

from __future__ import annotations

import polars as pl

# The raking target's adult brackets, preceded by two child brackets: (lowest age, highest
# age, label).
AGE_BRACKETS: tuple[tuple[int, int, str], ...] = (
    (0, 4, "Under 5"),
    (5, 17, "5-17"),
    (18, 24, "18-24"),
    (25, 34, "25-34"),
    (35, 44, "35-44"),
    (45, 54, "45-54"),
    (55, 64, "55-64"),
    (65, 200, "65+"),
)

# The slice column derived from a persona's age.
AGE_BRACKET = "age bracket"

# Reported for every bench or align run: the census headline attributes plus the belief ones.
HEADLINE_SLICES: tuple[str, ...] = (
    AGE_BRACKET,
    "sex",
    "race",
    "political views",
    "ideology",
    "religion",
    "education",
)


def age_bracket(age: int | None) -> str | None:
    """The bracket label of an age (None without an age or outside every bracket)."""
    if age is None:
        return None
    for low, high, label in AGE_BRACKETS:
        if low <= age <= high:
            return label
    return None


def age_bracket_expr(column: str = "age") -> pl.Expr:
    """`age_bracket` of a column, as a polars expression named AGE_BRACKET."""
    age = pl.col(column).cast(pl.Int64, strict=False)
    expression = pl.lit(None, dtype=pl.String)
    for low, high, label in reversed(AGE_BRACKETS):
        expression = pl.when(age.is_between(low, high)).then(pl.lit(label)).otherwise(expression)
    return expression.alias(AGE_BRACKET)
