"""Raking (iterative proportional fitting) of person weights to target marginal shares.

A target gives shares for some of the dimensions `age_bracket`, `sex`, `race_group` (the six
groups of `categories.py`) and `race_ethnicity` (White non-Hispanic, Hispanic, Other
non-Hispanic). Two file formats are read:

- counts: comment lines (`#`, provenance) then the header
  `age_bracket,sex,<race_group|race_ethnicity>,population[,source]`, one row per cell, and one
  `All,All,All,<total>` row holding the published total population of the cells. The cells must
  be disjoint (no cell twice, categories from one scheme only) and sum to the total within
  0.5%, else the file is refused: adding race-alone tables that include Hispanics to a Hispanic
  table (PRISM's us_census_aggregate.csv) counts people twice. The bundled `us-2022` target
  (us_census_target_2022.csv) is in this format;
- long: columns `dimension,category,share`.

PRISM's share-only wide layout (`age_category,<Race>_<Sex>,...`) is refused: shares alone cannot
show double counting, and that file does double-count.

Only persons inside the target's universe (the ages its brackets cover, adults 18+ for the U.S.
target) are raked; everyone else keeps their weight, and the raked persons keep their total, so
the share of children in the population does not change.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import polars as pl

from persona_testbed.census.categories import (
    ADULT_AGE,
    RACE_ETHNICITY_GROUPS,
    RACE_GROUPS,
)
from persona_testbed.census.decode import AGE_BRACKET, RACE_ETHNICITY, RACE_GROUP
from persona_testbed.census.resources import US_2022_TARGET
from persona_testbed.contracts.brackets import AGE_BRACKETS
from persona_testbed.errors import InputError

US_2022 = "us-2022"
DIMENSIONS: dict[str, str] = {
    "age_bracket": AGE_BRACKET,
    "sex": "sex",
    "race_group": RACE_GROUP,
    "race_ethnicity": RACE_ETHNICITY,
}
RACE_SCHEMES: dict[str, tuple[str, ...]] = {
    "race_group": RACE_GROUPS,
    "race_ethnicity": RACE_ETHNICITY_GROUPS,
}
SEXES = ("Male", "Female")
TOTAL = "All"
# Cells may miss the published total by rounding and small-area noise, never by double counting.
TOTAL_TOLERANCE = 0.005
US_2022_SOURCE = (
    "ACS 2022 1-year (ACSDT1Y2022), U.S. adults 18+: age bracket x sex x White non-Hispanic "
    "(B01001H) / Hispanic (B01001I) / Other non-Hispanic (B01001B-G minus their estimated "
    "Hispanics), total 333,287,557 (Vintage 2022); bundled us_census_target_2022.csv"
)
US_2022_NOTE = (
    "The shipped ACS tables identify only White non-Hispanic (B01001H) and Hispanic (B01001I); "
    "B01001B-G include Hispanics, so Black, Asian, AIAN, NHPI, Some other race and Two or more "
    "races (non-Hispanic) are raked as one residual group, estimated assuming the same share of "
    "Hispanics outside 'White alone' in every age x sex cell. Their shares within that group "
    "come from the PUMS pool, not from a U.S. target."
)


@dataclass(frozen=True)
class RakeTarget:
    """Target shares per dimension (each sums to 1) and where they came from."""

    name: str
    source: str
    margins: dict[str, dict[str, float]]
    joint: dict[tuple[str, str, str], float] = field(default_factory=dict)
    path: Path | None = None
    # What the target cannot say (shown by `census-compare` and the report).
    note: str = ""
    # Population of the raked universe and the published total the cells were checked against.
    universe_population: float | None = None
    published_total: float | None = None

    @property
    def min_age(self) -> int:
        """Youngest age the target covers (its universe)."""
        ages = self.margins.get("age_bracket")
        if not ages:
            return 0
        return min(lo for lo, _, label in AGE_BRACKETS if label in ages)


@dataclass(frozen=True)
class RakeResult:
    weights: np.ndarray
    target: RakeTarget
    iterations: int
    converged: bool
    max_share_error: float
    universe_rows: int
    dropped_categories: list[str]
    # The shares actually raked to: the target's, without categories absent from the data.
    margins: dict[str, dict[str, float]]


def load_target(spec: str) -> RakeTarget:
    """`us-2022` (the bundled U.S. 2022 adult target) or the path of a target CSV."""
    if spec == US_2022:
        target = _read_target(US_2022_TARGET, min_age=ADULT_AGE)
        return replace(target, name=US_2022, source=US_2022_SOURCE, note=US_2022_NOTE)
    path = Path(spec)
    if not path.is_file():
        raise InputError(f"--rake {spec}: not 'none', '{US_2022}' or an existing target CSV file")
    return _read_target(path)


def _read_target(path: Path, *, min_age: int = 0) -> RakeTarget:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(f"{path}: cannot read target ({exc.strerror})") from None
    # Comment lines carry provenance; line numbers in errors stay those of the file.
    numbered = [
        (number, row)
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip() and not line.lstrip().startswith("#")
        for row in csv.reader([line])
    ]
    if not numbered:
        raise InputError(f"{path}: empty target file")
    header = [h.strip() for h in numbered[0][1]]
    if header[:3] == ["dimension", "category", "share"]:
        margins = _read_long(path, numbered[1:])
        return RakeTarget(name=str(path), source=str(path), margins=margins, path=path)
    if header[:2] == ["age_bracket", "sex"] and len(header) >= 4 and header[3] == "population":
        return _read_counts(path, header, numbered[1:], min_age)
    if header and header[0] == "age_category":
        raise InputError(
            f"{path}: share-only 'age_category,<Race>_<Sex>' targets are refused: shares cannot "
            "show double counting (PRISM's us_census_aggregate.csv adds race-alone tables that "
            "include Hispanics to the Hispanic table); give counts with a total row "
            "(docs/personas.md)"
        )
    raise InputError(
        f"{path}: unknown target format (expected header 'dimension,category,share' or "
        "'age_bracket,sex,<race_group|race_ethnicity>,population[,source]')"
    )


def _number(path: Path, line: int, column: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InputError(
            f"{path}, line {line}, column {column}: '{text}' is not a number"
        ) from None
    if not math.isfinite(value) or value < 0:
        raise InputError(f"{path}, line {line}, column {column}: '{text}' is not a number >= 0")
    return value


def _read_counts(
    path: Path, header: list[str], rows: list[tuple[int, list[str]]], min_age: int
) -> RakeTarget:
    """Population counts per (age bracket, sex, race) cell, checked to be disjoint and to add
    up to the file's published total; shares of the cells aged `min_age`+ become the target."""
    race_dimension = header[2]
    if race_dimension not in RACE_SCHEMES:
        raise InputError(
            f"{path}: third column must be {' or '.join(RACE_SCHEMES)}, not '{race_dimension}'"
        )
    races = RACE_SCHEMES[race_dimension]
    other_scheme = {c for d, cs in RACE_SCHEMES.items() if d != race_dimension for c in cs}
    brackets = {label: lo for lo, _, label in AGE_BRACKETS}
    cells: dict[tuple[str, str, str], float] = {}
    total: float | None = None
    for line, row in rows:
        if len(row) < 4:
            raise InputError(f"{path}, line {line}: expected {','.join(header[:4])}")
        age, sex, race = (v.strip() for v in row[:3])
        count = _number(path, line, "population", row[3].strip())
        if (age, sex, race) == (TOTAL, TOTAL, TOTAL):
            total = count
            continue
        if age not in brackets:
            raise InputError(
                f"{path}, line {line}, column age_bracket: '{age}' is not one of "
                f"{', '.join(brackets)}"
            )
        if sex not in SEXES:
            raise InputError(f"{path}, line {line}, column sex: '{sex}' is not Male or Female")
        if race not in races:
            overlap = " (it overlaps the groups of the other race scheme)" * (race in other_scheme)
            raise InputError(
                f"{path}, line {line}, column {race_dimension}: '{race}' is not one of "
                f"{', '.join(races)}{overlap}"
            )
        if (age, sex, race) in cells:
            raise InputError(
                f"{path}, line {line}: cell {age}, {sex}, {race} given twice (double counted)"
            )
        cells[(age, sex, race)] = count
    if not cells:
        raise InputError(f"{path}: no population cells")
    if total is None:
        raise InputError(
            f"{path}: no 'All,All,All,<total>' row: a target must give the published total its "
            "cells add up to, so that overlapping groups are caught"
        )
    summed = sum(cells.values())
    if total <= 0 or abs(summed / total - 1) > TOTAL_TOLERANCE:
        verdict = (
            "the groups overlap (people counted twice)"
            if summed > total
            else "groups or cells are missing"
        )
        raise InputError(
            f"{path}: the cells sum to {summed:,.0f}, {summed / total - 1:+.1%} off the total row "
            f"{total:,.0f}: {verdict}"
        )
    universe = {key: v for key, v in cells.items() if brackets[key[0]] >= min_age}
    if not universe or sum(universe.values()) <= 0:
        raise InputError(f"{path}: no population aged {min_age}+")
    population = sum(universe.values())
    joint = {key: value / population for key, value in universe.items()}
    margins: dict[str, dict[str, float]] = {"age_bracket": {}, "sex": {}, race_dimension: {}}
    for (age, sex, race), share in joint.items():
        for dimension, category in (("age_bracket", age), ("sex", sex), (race_dimension, race)):
            margins[dimension][category] = margins[dimension].get(category, 0.0) + share
    return RakeTarget(
        name=str(path),
        source=str(path),
        margins=margins,
        joint=joint,
        path=path,
        universe_population=population,
        published_total=total,
    )


def _read_long(path: Path, rows: list[tuple[int, list[str]]]) -> dict[str, dict[str, float]]:
    margins: dict[str, dict[str, float]] = {}
    for line, row in rows:
        if not row or not row[0].strip():
            continue
        if len(row) < 3:
            raise InputError(f"{path}, line {line}: expected dimension,category,share")
        dimension, category = row[0].strip(), row[1].strip()
        if dimension not in DIMENSIONS:
            raise InputError(
                f"{path}, line {line}, column dimension: '{dimension}' is not one of "
                f"{', '.join(DIMENSIONS)}"
            )
        shares = margins.setdefault(dimension, {})
        if category in shares:
            raise InputError(
                f"{path}, line {line}: {dimension} '{category}' given twice (double counted)"
            )
        shares[category] = _number(path, line, "share", row[2])
    if not margins:
        raise InputError(f"{path}: no target shares")
    if len(set(margins) & set(RACE_SCHEMES)) > 1:
        raise InputError(
            f"{path}: race_group and race_ethnicity are overlapping groupings of the same "
            "people; give one of them"
        )
    for dimension, shares in margins.items():
        total = sum(shares.values())
        if total <= 0:
            raise InputError(f"{path}: shares of {dimension} sum to zero")
        margins[dimension] = {k: v / total for k, v in shares.items()}
    return margins


def effective_sample_size(weights: np.ndarray) -> float:
    """Kish's effective sample size, (sum w)^2 / sum w^2."""
    total = float(weights.sum())
    squares = float(np.square(weights).sum())
    return total * total / squares if squares > 0 else 0.0


def rake(
    frame: pl.DataFrame,
    weights: np.ndarray,
    target: RakeTarget,
    *,
    max_iterations: int = 200,
    tolerance: float = 1e-9,
) -> RakeResult:
    """Rake `weights` (one per row of `frame`, which holds the dimension columns) to `target`."""
    universe = (frame.get_column("age").to_numpy() >= target.min_age) & (weights > 0)
    codes: list[np.ndarray] = []
    shares: list[np.ndarray] = []
    dropped: list[str] = []
    effective: dict[str, dict[str, float]] = {}
    for dimension, wanted in target.margins.items():
        values = frame.get_column(DIMENSIONS[dimension]).cast(pl.String).fill_null("(missing)")
        distinct, inverse = np.unique(values.to_numpy()[universe].astype(str), return_inverse=True)
        present = set(distinct.tolist())
        unknown = sorted(present - set(wanted))
        if unknown:
            raise InputError(
                f"{target.source}: the target has no share for {dimension} "
                f"{', '.join(repr(u) for u in unknown)}, which the data contains"
            )
        categories = [c for c in wanted if c in present]
        dropped += [f"{dimension}={c}" for c in wanted if c not in present]
        index = {c: i for i, c in enumerate(categories)}
        codes.append(np.array([index[v] for v in distinct.tolist()], dtype=np.int64)[inverse])
        share = np.array([wanted[c] for c in categories], dtype=np.float64)
        shares.append(share / share.sum())
        effective[dimension] = dict(zip(categories, shares[-1].tolist(), strict=True))
    w = weights[universe].astype(np.float64)
    total = w.sum()
    converged = False
    iteration = 0
    error = float("inf")
    for iteration in range(1, max_iterations + 1):  # noqa: B007 - reported after the loop
        for code, share in zip(codes, shares, strict=True):
            current = np.bincount(code, weights=w, minlength=len(share))
            factor = np.divide(share * total, current, out=np.zeros_like(share), where=current > 0)
            w *= factor[code]
        error = max(
            float(np.abs(np.bincount(code, weights=w, minlength=len(share)) / total - share).max())
            for code, share in zip(codes, shares, strict=True)
        )
        if error < tolerance:
            converged = True
            break
    raked = weights.astype(np.float64).copy()
    raked[universe] = w
    return RakeResult(
        weights=raked,
        target=target,
        iterations=iteration,
        converged=converged,
        max_share_error=error,
        universe_rows=int(universe.sum()),
        dropped_categories=dropped,
        margins=effective,
    )
