"""Raking to target marginals: hits the targets, leaves children alone, reports concentration."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from persona_testbed.census import Population, effective_sample_size, load_target, rake
from persona_testbed.census.decode import AGE_BRACKET, RACE_GROUP
from persona_testbed.census.raking import DIMENSIONS
from persona_testbed.errors import InputError


def _margin(frame: pl.DataFrame, weights: np.ndarray, column: str) -> dict[str, float]:
    table = (
        pl.DataFrame({"c": frame.get_column(column), "w": weights})
        .group_by("c")
        .agg(pl.col("w").sum())
    )
    total = float(table.get_column("w").sum())
    return {c: w / total for c, w in table.iter_rows()}


def test_us_2022_target_reads_the_bundled_marginals() -> None:
    target = load_target("us-2022")
    assert target.min_age == 18
    assert set(target.margins) == {"age_bracket", "sex", "race_group"}
    assert target.margins["sex"]["Female"] == pytest.approx(0.506754, abs=1e-6)
    assert target.margins["age_bracket"]["65+"] == pytest.approx(0.208609, abs=1e-6)
    assert target.margins["race_group"]["Hispanic"] == pytest.approx(0.075780 + 0.074388, abs=1e-5)
    assert sum(target.joint.values()) == pytest.approx(1.0)


def test_raking_hits_every_target_margin_and_keeps_children(population: Population) -> None:
    target = load_target("us-2022")
    result = rake(population.frame, population.base_weights, target)
    assert result.converged
    adults = (population.frame.get_column("age") >= 18).to_numpy()
    frame = population.frame.filter(pl.Series(adults))
    for dimension, wanted in target.margins.items():
        got = _margin(frame, result.weights[adults], DIMENSIONS[dimension])
        for category, share in wanted.items():
            assert got[category] == pytest.approx(share, abs=1e-6), (dimension, category)
    assert np.array_equal(result.weights[~adults], population.base_weights[~adults])
    assert result.weights[adults].sum() == pytest.approx(population.base_weights[adults].sum())
    # The 14 states are whiter than the U.S.: raking must move weight to other groups.
    before = _margin(frame, population.base_weights[adults], RACE_GROUP)
    assert before["White"] > target.margins["race_group"]["White"] + 0.1


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
