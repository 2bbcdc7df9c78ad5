"""Raking to target marginals: hits the targets, leaves children alone, reports concentration."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from persona_testbed.census import Population, effective_sample_size, load_target, rake
from persona_testbed.census.categories import RACE_ETHNICITY_GROUPS
from persona_testbed.census.decode import AGE_BRACKET, RACE_ETHNICITY, RACE_GROUP
from persona_testbed.census.raking import DIMENSIONS
from persona_testbed.census.resources import US_2022_TARGET
from persona_testbed.census.sampling import Sampling, draw
from persona_testbed.contracts import AGE_BRACKETS
from persona_testbed.errors import InputError
from tests.census.conftest import SHARED


def _margin(frame: pl.DataFrame, weights: np.ndarray, column: str) -> dict[str, float]:
    table = (
        pl.DataFrame({"c": frame.get_column(column), "w": weights})
        .group_by("c")
        .agg(pl.col("w").sum())
    )
    total = float(table.get_column("w").sum())
    return {c: w / total for c, w in table.iter_rows()}


def _cells(path: Path) -> pl.DataFrame:
    return pl.read_csv(path, comment_prefix="#")


def test_us_2022_target_groups_are_disjoint_and_sum_to_the_us_population() -> None:
    """The bundled target: White non-Hispanic (B01001H), Hispanic (B01001I) and one residual
    group, whose cells add up to the published 2022 U.S. population (not 386.1M)."""
    cells = _cells(US_2022_TARGET)
    total = cells.filter(pl.col("age_bracket") == "All").get_column("population").item()
    assert total == 333_287_557
    groups = cells.filter(pl.col("age_bracket") != "All")
    assert set(groups.get_column("race_ethnicity")) == set(RACE_ETHNICITY_GROUPS)
    assert groups.select("age_bracket", "sex", "race_ethnicity").is_duplicated().sum() == 0
    assert groups.height == len(AGE_BRACKETS) * 2 * 3
    assert groups.get_column("population").sum() == pytest.approx(total, rel=0.005)
    by_group = dict(groups.group_by("race_ethnicity").agg(pl.col("population").sum()).iter_rows())
    # Published table totals (ACS 2022 1-year, U.S.): B01001H and B01001I.
    assert by_group["White non-Hispanic"] == 192_153_076
    assert by_group["Hispanic"] == 63_553_639
    hispanic_boys_under_5 = groups.filter(
        (pl.col("age_bracket") == "Under 5")
        & (pl.col("sex") == "Male")
        & (pl.col("race_ethnicity") == "Hispanic")
    )
    assert hispanic_boys_under_5.get_column("population").item() == 2_467_419

    target = load_target("us-2022")
    assert target.min_age == 18
    assert set(target.margins) == {"age_bracket", "sex", "race_ethnicity"}
    assert target.published_total == total
    # U.S. adults 2022: about 60% White non-Hispanic, 17% Hispanic (not 53% / 15% + 32% rest).
    race = target.margins["race_ethnicity"]
    assert race["White non-Hispanic"] == pytest.approx(0.604, abs=0.002)
    assert race["Hispanic"] == pytest.approx(0.172, abs=0.002)
    assert race["Other non-Hispanic"] == pytest.approx(0.224, abs=0.002)
    assert target.universe_population == pytest.approx(261.2e6, rel=0.002)
    assert sum(target.joint.values()) == pytest.approx(1.0)
    assert "residual group" in target.note


def test_raked_pps_draw_reproduces_the_target(population: Population) -> None:
    target = load_target("us-2022")
    result = rake(population.frame, population.base_weights, target)
    assert result.converged
    adults = (population.frame.get_column("age") >= 18).to_numpy()
    frame = population.frame.filter(pl.Series(adults))
    for dimension, wanted in target.margins.items():
        got = _margin(frame, result.weights[adults], DIMENSIONS[dimension])
        for category, share in wanted.items():
            assert got[category] == pytest.approx(share, abs=1e-6), (dimension, category)
    strata = [
        frame.get_column(c).rank("dense").fill_null(0).to_numpy()
        for c in (AGE_BRACKET, "sex", RACE_GROUP, "source_state")
    ]
    drawn = draw(Sampling.PPS, result.weights[adults], 4000, np.random.default_rng(5), strata)
    sample = frame.select(pl.all().gather(pl.Series(drawn, dtype=pl.UInt32)))
    for dimension, wanted in target.margins.items():
        got = _margin(sample, np.ones(sample.height), DIMENSIONS[dimension])
        for category, share in wanted.items():
            assert got[category] == pytest.approx(share, abs=0.005), (dimension, category)
    # The persona race attribute itself keeps its eight categories: only the margin is coarse.
    assert sample.get_column("race").n_unique() == 8


def test_raking_keeps_children_and_moves_weight_off_white(population: Population) -> None:
    target = load_target("us-2022")
    result = rake(population.frame, population.base_weights, target)
    adults = (population.frame.get_column("age") >= 18).to_numpy()
    assert np.array_equal(result.weights[~adults], population.base_weights[~adults])
    assert result.weights[adults].sum() == pytest.approx(population.base_weights[adults].sum())
    frame = population.frame.filter(pl.Series(adults))
    # The 14 states are whiter than the U.S.: raking must move weight to other groups.
    before = _margin(frame, population.base_weights[adults], RACE_ETHNICITY)
    assert (
        before["White non-Hispanic"] > target.margins["race_ethnicity"]["White non-Hispanic"] + 0.1
    )


def _write_counts(path: Path, rows: list[tuple[str, str, str, float]], column: str) -> Path:
    lines = [f"# test target\nage_bracket,sex,{column},population"]
    lines += [f"{a},{s},{r},{p}" for a, s, r, p in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_target_that_double_counts_is_refused(tmp_path: Path) -> None:
    cells = _cells(US_2022_TARGET).filter(pl.col("age_bracket") != "All")
    rows = [(a, s, r, float(p)) for a, s, r, p, _ in cells.iter_rows()]
    total = ("All", "All", "All", 333_287_557.0)
    assert load_target(str(_write_counts(tmp_path / "ok.csv", [*rows, total], "race_ethnicity")))
    # The PRISM construction: race-alone groups that include Hispanics next to a Hispanic group.
    six = {"White non-Hispanic": "White", "Hispanic": "Hispanic", "Other non-Hispanic": "Black"}
    overlapping = [(a, s, six[r], p) for a, s, r, p in rows]
    overlapping += [(a, s, "Mixed", p) for a, s, r, p in rows if r == "Hispanic"]
    path = _write_counts(tmp_path / "double.csv", [*overlapping, total], "race_group")
    with pytest.raises(
        InputError,
        match=r"double\.csv: the cells sum to [\d,]+, \+19\.1% off"
        r" the total row 333,287,557: the groups overlap",
    ):
        load_target(str(path))
    mixed = _write_counts(
        tmp_path / "mixed.csv", [*rows, ("18-24", "Male", "Black", 1.0), total], "race_ethnicity"
    )
    with pytest.raises(
        InputError,
        match=r"mixed\.csv, line \d+, column race_ethnicity: 'Black' .*"
        r"overlaps",
    ):
        load_target(str(mixed))
    twice = _write_counts(tmp_path / "twice.csv", [*rows, rows[0], total], "race_ethnicity")
    with pytest.raises(
        InputError,
        match=r"twice\.csv, line \d+: cell Under 5, Male, White "
        r"non-Hispanic given twice",
    ):
        load_target(str(twice))
    no_total = _write_counts(tmp_path / "no_total.csv", rows, "race_ethnicity")
    with pytest.raises(InputError, match=r"no_total\.csv: no 'All,All,All,<total>' row"):
        load_target(str(no_total))


def test_the_prism_share_file_is_refused(tmp_path: Path) -> None:
    prism = tmp_path / "us_census_aggregate.csv"
    prism.write_text(
        "age_category,White_Male,Hispanic_Male,Black_Male,All\n18-24 years old,0.3,0.2,0.5,1.0\n"
    )
    with pytest.raises(InputError, match=r"us_census_aggregate\.csv: share-only .* refused"):
        load_target(str(prism))
    shared = SHARED / "data" / "census_marginals" / "us_census_aggregate.csv"
    if shared.is_file():  # the real PRISM file (386.1M people for 333.3M) is refused too
        with pytest.raises(InputError, match=r"share-only .* refused"):
            load_target(str(shared))


def test_long_format_target_and_effective_sample_size(
    tmp_path: Path, population: Population
) -> None:
    target_file = tmp_path / "target.csv"
    target_file.write_text("dimension,category,share\nsex,Male,1\nsex,Female,3\n")
    target = load_target(str(target_file))
    assert target.min_age == 0 and target.margins == {"sex": {"Male": 0.25, "Female": 0.75}}
    result = rake(population.frame, population.base_weights, target)
    assert _margin(population.frame, result.weights, "sex")["Female"] == pytest.approx(0.75)
    assert effective_sample_size(np.ones(10)) == pytest.approx(10)
    assert effective_sample_size(np.array([1.0, 3.0])) == pytest.approx(16 / 10)
    assert effective_sample_size(result.weights) < effective_sample_size(population.base_weights)


def test_bad_targets_are_clear_errors(tmp_path: Path, population: Population) -> None:
    with pytest.raises(InputError, match="--rake us-2023: not 'none', 'us-2022' or an existing"):
        load_target("us-2023")
    unknown = tmp_path / "t.csv"
    unknown.write_text("dimension,category,share\nincome,rich,1\n")
    with pytest.raises(InputError, match=r"t\.csv, line 2, column dimension: 'income'"):
        load_target(str(unknown))
    partial = tmp_path / "race.csv"
    partial.write_text("dimension,category,share\nrace_group,White,1\n")
    with pytest.raises(InputError, match=r"race\.csv: the target has no share for race_group"):
        rake(population.frame, population.base_weights, load_target(str(partial)))
    not_number = tmp_path / "n.csv"
    not_number.write_text("dimension,category,share\nsex,Male,lots\n")
    with pytest.raises(InputError, match=r"n\.csv, line 2, column share: 'lots' is not a number"):
        load_target(str(not_number))


def test_age_brackets_match_the_target_labels(population: Population) -> None:
    labels = set(population.frame.get_column(AGE_BRACKET).unique().to_list())
    assert set(load_target("us-2022").margins["age_bracket"]) <= labels
