"""Raking (iterative proportional fitting) of person weights to target marginal shares.

A target gives shares for some of three dimensions: `age_bracket`, `sex` and `race_group` (the
labels of `categories.py`). Two file formats are read:

- wide, as the bundled `us_census_aggregate.csv`: one row per age bracket ("18-24 years old",
  "65+ years old", and an "All Ages" total row that is ignored), one column per
  `<RaceGroup>_<Sex>` cell holding the joint share;
- long: columns `dimension,category,share`.

Only persons inside the target's universe (the ages its brackets cover, adults 18+ for the U.S.
target) are raked; everyone else keeps their weight, and the raked persons keep their total, so
the share of children in the population does not change.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from persona_testbed.census.categories import AGE_BRACKETS, RACE_GROUPS
from persona_testbed.census.decode import AGE_BRACKET, RACE_GROUP
from persona_testbed.census.resources import US_2022_TARGET
from persona_testbed.errors import InputError

US_2022 = "us-2022"
DIMENSIONS: dict[str, str] = {"age_bracket": AGE_BRACKET, "sex": "sex", "race_group": RACE_GROUP}
SEXES = ("Male", "Female")
_AGE_RANGE = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)|\+)")


@dataclass(frozen=True)
class RakeTarget:
    """Target shares per dimension (each sums to 1) and where they came from."""

    name: str
    source: str
    margins: dict[str, dict[str, float]]
    joint: dict[tuple[str, str, str], float] = field(default_factory=dict)
    path: Path | None = None

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
        target = _read_target(US_2022_TARGET)
        return RakeTarget(
            name=US_2022,
            source="ACS 2022 1-year, U.S. adults 18+, age x sex x race/ethnicity "
            "(tables B01001B-I; bundled us_census_aggregate_2022.csv)",
            margins=target.margins,
            joint=target.joint,
            path=US_2022_TARGET,
        )
    path = Path(spec)
    if not path.is_file():
        raise InputError(f"--rake {spec}: not 'none', '{US_2022}' or an existing target CSV file")
    return _read_target(path)


def _read_target(path: Path) -> RakeTarget:
    try:
        rows = list(csv.reader(path.read_text(encoding="utf-8-sig").splitlines()))
    except OSError as exc:
        raise InputError(f"{path}: cannot read target ({exc.strerror})") from None
    if not rows:
        raise InputError(f"{path}: empty target file")
    header = [h.strip() for h in rows[0]]
    if header[:3] == ["dimension", "category", "share"]:
        margins = _read_long(path, rows[1:])
        return RakeTarget(name=str(path), source=str(path), margins=margins, path=path)
    if header and header[0] == "age_category":
        margins, joint = _read_wide(path, header, rows[1:])
        return RakeTarget(name=str(path), source=str(path), margins=margins, joint=joint, path=path)
    raise InputError(
        f"{path}: unknown target format (expected header 'dimension,category,share' or the "
        "'age_category,<Race>_<Sex>,...' layout of us_census_aggregate.csv)"
    )


def _share(path: Path, line: int, column: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InputError(
            f"{path}, line {line}, column {column}: '{text}' is not a number"
        ) from None
    if value < 0:
        raise InputError(f"{path}, line {line}, column {column}: negative share {value}")
    return value


def _age_label(path: Path, line: int, text: str) -> str:
    match = _AGE_RANGE.match(text)
    if match is None:
        raise InputError(f"{path}, line {line}, column age_category: unknown age range '{text}'")
    lo = int(match.group(1))
    hi = int(match.group(2)) if match.group(2) else 200
    for b_lo, b_hi, label in AGE_BRACKETS:
        if (b_lo, b_hi) == (lo, hi):
            return label
    known = ", ".join(label for _, _, label in AGE_BRACKETS)
    raise InputError(
        f"{path}, line {line}, column age_category: age range '{text}' is not one of {known}"
    )


def _read_wide(
    path: Path, header: list[str], rows: list[list[str]]
) -> tuple[dict[str, dict[str, float]], dict[tuple[str, str, str], float]]:
    cells: list[tuple[int, str, str]] = []
    for index, name in enumerate(header[1:], start=1):
        race, _, sex = name.rpartition("_")
        if race in RACE_GROUPS and sex in SEXES:
            cells.append((index, race, sex))
    if not cells:
        raise InputError(f"{path}: no <Race>_<Sex> share columns (races: {', '.join(RACE_GROUPS)})")
    joint: dict[tuple[str, str, str], float] = {}
    for line, row in enumerate(rows, start=2):
        if not row or not row[0].strip() or row[0].strip().lower().startswith("all"):
            continue
        age = _age_label(path, line, row[0].strip())
        for index, race, sex in cells:
            if index >= len(row):
                raise InputError(f"{path}, line {line}: missing column {header[index]}")
            joint[(age, sex, race)] = _share(path, line, header[index], row[index])
    total = sum(joint.values())
    if total <= 0:
        raise InputError(f"{path}: target shares sum to zero")
    margins: dict[str, dict[str, float]] = {"age_bracket": {}, "sex": {}, "race_group": {}}
    for (age, sex, race), value in joint.items():
        for dimension, category in (("age_bracket", age), ("sex", sex), ("race_group", race)):
            margins[dimension][category] = margins[dimension].get(category, 0.0) + value / total
    joint = {key: value / total for key, value in joint.items()}
    return margins, joint


def _read_long(path: Path, rows: list[list[str]]) -> dict[str, dict[str, float]]:
    margins: dict[str, dict[str, float]] = {}
    for line, row in enumerate(rows, start=2):
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
        margins.setdefault(dimension, {})[category] = _share(path, line, "share", row[2])
    if not margins:
        raise InputError(f"{path}: no target shares")
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
