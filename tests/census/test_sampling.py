"""PPS draws of whole person records reproduce the weighted census distributions."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from persona_testbed.census import (
    PersonaConfig,
    Population,
    Sampling,
    build_personas,
    draw_iid,
    draw_systematic_pps,
)
from persona_testbed.census.categories import range_label
from persona_testbed.census.decode import AGE_BRACKET, RACE_GROUP
from persona_testbed.contracts import AGE_BRACKETS
from persona_testbed.errors import PersonaError


def _tvd(sample: pl.Series, population: pl.Series, weights: np.ndarray) -> float:
    wanted = (
        pl.DataFrame({"c": population, "w": weights})
        .group_by("c")
        .agg(pl.col("w").sum() / weights.sum())
    )
    got = pl.DataFrame({"c": sample}).group_by("c").agg(pl.len() / sample.len())
    both = wanted.join(got, on="c", how="full", coalesce=True).fill_null(0.0)
    difference = both.get_column("w").to_numpy() - both.get_column("len").to_numpy()
    return float(0.5 * np.abs(difference).sum())


@pytest.mark.parametrize("method", [Sampling.PPS, Sampling.IID])
def test_draws_reproduce_weighted_marginals_at_n_20000(
    population: Population, method: Sampling
) -> None:
    build = build_personas(
        PersonaConfig(n=20_000, seed=3, sampling=method, use_llm=False), population
    )
    bracket = range_label(pl.col("age"), AGE_BRACKETS).alias("bracket")
    sample = build.personas.with_columns(bracket)
    pool = population.frame.with_columns(bracket)
    weights = population.base_weights
    for column in ("sex", "race", "bracket"):
        assert _tvd(sample[column], pool[column], weights) < 0.02, column


def test_systematic_pps_hits_every_unit_floor_or_ceil_of_its_expectation() -> None:
    rng = np.random.default_rng(0)
    weights = rng.integers(1, 200, size=500).astype(np.float64)
    n = 2_000
    counts = np.bincount(draw_systematic_pps(weights, n, np.random.default_rng(1)), minlength=500)
    expected = weights * n / weights.sum()
    assert counts.sum() == n
    assert np.all(counts >= np.floor(expected)) and np.all(counts <= np.ceil(expected))


def test_systematic_pps_with_strata_balances_each_stratum() -> None:
    rng = np.random.default_rng(5)
    weights = rng.uniform(1, 3, size=1_000)
    strata = rng.integers(0, 4, size=1_000)
    picks = draw_systematic_pps(weights, 400, np.random.default_rng(2), [strata])
    for stratum in range(4):
        expected = 400 * weights[strata == stratum].sum() / weights.sum()
        assert abs(int((strata[picks] == stratum).sum()) - expected) <= 1.0


def test_draws_are_seeded_and_skip_zero_weights() -> None:
    weights = np.array([0.0, 1.0, 0.0, 3.0])
    first = draw_iid(weights, 1_000, np.random.default_rng(9))
    assert np.array_equal(first, draw_iid(weights, 1_000, np.random.default_rng(9)))
    assert set(first.tolist()) == {1, 3}
    assert set(draw_systematic_pps(weights, 100, np.random.default_rng(9)).tolist()) == {1, 3}


def test_nothing_to_draw_is_a_clear_error() -> None:
    with pytest.raises(PersonaError, match="no person records to sample from"):
        draw_iid(np.zeros(3), 5, np.random.default_rng(0))


def test_pps_strata_columns_exist(population: Population) -> None:
    assert {AGE_BRACKET, RACE_GROUP, "sex", "source_state"} <= set(population.frame.columns)
