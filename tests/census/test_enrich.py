"""Procedural enrichment: Big Five, curated lists, religion and politics."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from persona_testbed.census import Population, enrich
from persona_testbed.census.beliefs import (
    categorical,
    draw_politics,
    draw_religion,
    load_beliefs,
    party_table,
    religion_table,
)
from persona_testbed.census.bigfive import CORRELATION, DOMAINS, LEVELS, draw_levels
from persona_testbed.census.curated import CURATED_LISTS, draw_curated, load_lists


def test_big_five_levels_follow_the_percentile_bins_and_correlations() -> None:
    levels = draw_levels(200_000, np.random.default_rng(0))
    shares = np.bincount(levels.ravel(), minlength=5) / levels.size
    assert shares == pytest.approx([0.10, 0.20, 0.40, 0.20, 0.10], abs=0.005)
    observed = np.corrcoef(levels.T)
    # Binning shrinks correlations a little but keeps every sign and the ordering.
    assert np.all(np.sign(observed) == np.sign(CORRELATION))
    assert observed[2, 4] < observed[0, 4] < 0  # E-N is the most negative pair
    np.testing.assert_allclose(np.linalg.eigvalsh(CORRELATION) > 0, True)


def test_big_five_text_matches_appendix_c(population: Population) -> None:
    frame = enrich(population.frame.head(50), seed=1)
    text = frame.get_column("big five scores")[0]
    parts = [part.split(": ") for part in text.split(", ")]
    assert [name for name, _ in parts] == list(DOMAINS)
    assert all(level in LEVELS for _, level in parts)


def test_curated_lists_have_40_adult_entries_and_fit_ages() -> None:
    lists = load_lists()
    for name in CURATED_LISTS:
        adults = [e for e in lists[name] if e.min_age <= 40 <= e.max_age]
        assert len({e.text for e in adults}) >= 40, name
    ages = np.array([0, 2, 7, 15, 17, 18, 30, 70, 99] * 200)
    for name in CURATED_LISTS:
        drawn = draw_curated(name, ages, np.random.default_rng(4)).to_list()
        by_text = {e.text: e for e in lists[name]}
        for age, text in zip(ages.tolist(), drawn, strict=True):
            entry = by_text[text]
            assert entry.min_age <= age <= entry.max_age, (name, age, text)


def test_children_get_age_appropriate_beliefs() -> None:
    ages = np.array([4, 10, 17, 18, 45, 80])
    races = pl.Series(["White", "Black", "Asian", "Hispanic", "Mixed", "Other"])
    values = pl.Series(["fairness and kindness"] * 6)
    ideology, views = draw_politics(
        ages, races, values, np.random.default_rng(1), np.random.default_rng(2)
    )
    assert ideology.to_list()[:3] == ["Believes in fairness and kindness"] * 3
    assert views.to_list()[:3] == ["Too young to have political views"] * 3
    beliefs = load_beliefs()
    assert set(ideology.to_list()[3:]) <= set(beliefs.ideologies)
    assert set(views.to_list()[3:]) <= set(beliefs.parties)
    religion = draw_religion(ages, races, np.random.default_rng(3))
    assert set(religion.to_list()) <= set(beliefs.religions)


def test_belief_tables_are_distributions_conditioned_as_published() -> None:
    beliefs = load_beliefs()
    religion = religion_table(beliefs)
    party = party_table(beliefs)
    np.testing.assert_allclose(religion.sum(axis=1), 1.0)
    np.testing.assert_allclose(party.sum(axis=1), 1.0)
    races = ("White", "Black", "Hispanic", "Mixed", "Other", "Asian")
    protestant = beliefs.religions.index("Protestant")
    catholic = beliefs.religions.index("Catholic")
    nothing = beliefs.religions.index("Nothing in particular")
    young, old = 0, 3
    # Younger adults are less often Christian; Hispanic adults more often Catholic.
    assert religion[young * 6, nothing] > religion[old * 6, nothing]
    hispanic, white, black = races.index("Hispanic"), races.index("White"), races.index("Black")
    assert religion[hispanic, catholic] > religion[white, catholic]
    assert religion[black, protestant] > religion[white, protestant]
    democrat = beliefs.parties.index("Democrat")
    liberal, conservative = 0, 2
    assert party[liberal * 6 + white, democrat] > party[conservative * 6 + white, democrat]
    assert party[1 * 6 + black, democrat] > party[1 * 6 + white, democrat]
    draws = categorical(
        np.array([[0.2, 0.8]]), np.zeros(20_000, dtype=np.int64), np.random.default_rng(0)
    )
    assert np.mean(draws == 1) == pytest.approx(0.8, abs=0.01)


def test_enrichment_is_seeded_and_independent_per_draw(population: Population) -> None:
    rows = population.frame.head(300)
    first, again, other = enrich(rows, 7), enrich(rows, 7), enrich(rows, 8)
    assert first.equals(again)
    assert not first.get_column("religion").equals(other.get_column("religion"))
