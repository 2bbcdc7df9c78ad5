"""Religion, ideology and political views drawn from published U.S. distributions
(data/beliefs.yaml holds the numbers and their sources).

- religion | age group, race/ethnicity (Pew Religious Landscape Study 2014);
- ideology | age group (Gallup 2018-2019);
- political views (party) | ideology, race/ethnicity (Gallup party ID and ideology by party,
  Pew party affiliation by race).

Two conditioning tables are combined as P(x | a, b) ~ P(x | a) P(x | b) / P(x) (independent
effects; approximate). Children get age-appropriate values, as in the paper's Appendix C: no
party ("Too young to have political views"), an "ideology" that is a core value ("Believes in
fairness and kindness"), and the religion of their parents' generation.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import yaml

from persona_testbed.census.categories import ADULT_AGE, RACE_GROUPS
from persona_testbed.census.resources import BELIEFS_FILE
from persona_testbed.errors import InputError

BELIEF_AGE_GROUPS: tuple[tuple[int, int, str], ...] = (
    (18, 29, "18-29"),
    (30, 49, "30-49"),
    (50, 64, "50-64"),
    (65, 200, "65+"),
)
IDEOLOGY_3 = (0, 0, 1, 2, 2)  # very liberal, liberal -> liberal; ...; conservative, very -> cons.


def _normalized(values: list[float]) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    normalized: np.ndarray = array / array.sum()
    return normalized


@dataclass(frozen=True)
class Beliefs:
    religions: tuple[str, ...]
    religion_overall: np.ndarray
    religion_by_age: dict[str, np.ndarray]
    religion_by_race: dict[str, np.ndarray]
    child_age_group: str
    ideologies: tuple[str, ...]
    ideology_by_age: dict[str, np.ndarray]
    parties: tuple[str, ...]
    party_shares: np.ndarray
    ideology_given_party: np.ndarray  # (party, liberal/moderate/conservative)
    leaned_by_race: dict[str, np.ndarray]  # race -> (Democrat, Republican) shares
    leaned_all: np.ndarray
    child_political_views: str
    child_ideology_prefix: str
    sources: dict[str, str]


@cache
def load_beliefs(path: Path = BELIEFS_FILE) -> Beliefs:
    try:
        data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
        religion, ideology, party = data["religion"], data["ideology"], data["political views"]
        parties = tuple(party["categories"])
        leaned = {k: _normalized(v) for k, v in party["leaned_by_race"].items()}
        return Beliefs(
            religions=tuple(religion["categories"]),
            religion_overall=_normalized(religion["overall"]),
            religion_by_age={k: _normalized(v) for k, v in religion["by_age"].items()},
            religion_by_race={k: _normalized(v) for k, v in religion["by_race"].items()},
            child_age_group=str(religion["child_age_group"]),
            ideologies=tuple(ideology["categories"]),
            ideology_by_age={k: _normalized(v) for k, v in ideology["by_age"].items()},
            parties=parties,
            party_shares=_normalized(party["party_shares"]),
            ideology_given_party=np.array(
                [_normalized(party["ideology_given_party"][p]) for p in parties]
            ),
            leaned_by_race={k: v for k, v in leaned.items() if k != "all"},
            leaned_all=leaned["all"],
            child_political_views=str(data["children"]["political views"]),
            child_ideology_prefix=str(data["children"]["ideology_prefix"]),
            sources={
                "religion": " ".join(str(religion["source"]).split()),
                "ideology": " ".join(str(ideology["source"]).split()),
                "political views": " ".join(str(party["source"]).split()),
            },
        )
    except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        raise InputError(f"{path}: cannot read belief tables ({exc!r})") from None


def age_group_index(ages: np.ndarray, child_group: str | None = None) -> np.ndarray:
    """Index into BELIEF_AGE_GROUPS per person; children map to `child_group` (or -1)."""
    starts = np.array([lo for lo, _, _ in BELIEF_AGE_GROUPS])
    index = np.searchsorted(starts, ages, side="right") - 1
    labels = [label for _, _, label in BELIEF_AGE_GROUPS]
    child = labels.index(child_group) if child_group is not None else -1
    groups: np.ndarray = np.where(ages < ADULT_AGE, child, index)
    return groups


def race_index(race_groups: pl.Series) -> np.ndarray:
    lookup = {race: i for i, race in enumerate(RACE_GROUPS)}
    return (
        race_groups.replace_strict(lookup, default=lookup["Other"], return_dtype=pl.Int64)
        .fill_null(lookup["Other"])
        .to_numpy()
    )


def categorical(probs: np.ndarray, rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One category index per person from row `rows[i]` of the probability table `probs`."""
    cumulative = np.cumsum(probs, axis=1)
    cumulative[:, -1] = 1.0  # no rounding gap at the top
    draws = rng.random(rows.size)
    picks = np.empty(rows.size, dtype=np.int64)
    for row in np.unique(rows):  # a few dozen table rows at most
        members = rows == row
        picks[members] = np.searchsorted(cumulative[row], draws[members], side="right")
    return picks


def _combine(first: np.ndarray, second: np.ndarray, overall: np.ndarray) -> np.ndarray:
    product: np.ndarray = first * second / overall
    return product / float(product.sum())


def religion_table(beliefs: Beliefs) -> np.ndarray:
    """P(religion | age group, race): rows age_index * len(RACE_GROUPS) + race_index."""
    rows = []
    for _, _, age in BELIEF_AGE_GROUPS:
        for race in RACE_GROUPS:
            rows.append(
                _combine(
                    beliefs.religion_by_age[age],
                    beliefs.religion_by_race[race],
                    beliefs.religion_overall,
                )
            )
    return np.array(rows)


def party_table(beliefs: Beliefs) -> np.ndarray:
    """P(party | ideology (3 levels), race): rows ideology3 * len(RACE_GROUPS) + race."""
    democrat, republican = beliefs.parties.index("Democrat"), beliefs.parties.index("Republican")
    rows = []
    for ideology in range(3):
        base = beliefs.party_shares * beliefs.ideology_given_party[:, ideology]
        base = base / base.sum()
        for race in RACE_GROUPS:
            factor = np.ones(len(beliefs.parties))
            leaned = beliefs.leaned_by_race[race]
            factor[democrat] = leaned[0] / beliefs.leaned_all[0]
            factor[republican] = leaned[1] / beliefs.leaned_all[1]
            row = base * factor
            rows.append(row / row.sum())
    return np.array(rows)


def draw_religion(ages: np.ndarray, race_groups: pl.Series, rng: np.random.Generator) -> pl.Series:
    beliefs = load_beliefs()
    age_index = age_group_index(ages, beliefs.child_age_group)
    rows = age_index * len(RACE_GROUPS) + race_index(race_groups)
    picks = categorical(religion_table(beliefs), rows, rng)
    labels = pl.Series("religion", beliefs.religions, dtype=pl.String)
    return labels.gather(pl.Series(picks, dtype=pl.UInt32))


def draw_politics(
    ages: np.ndarray,
    race_groups: pl.Series,
    child_values: pl.Series,
    ideology_rng: np.random.Generator,
    party_rng: np.random.Generator,
) -> tuple[pl.Series, pl.Series]:
    """(ideology, political views) per person; `child_values` are core values for minors."""
    beliefs = load_beliefs()
    adult = ages >= ADULT_AGE
    age_index = np.maximum(age_group_index(ages), 0)
    ideology_probs = np.array([beliefs.ideology_by_age[g] for _, _, g in BELIEF_AGE_GROUPS])
    ideology = categorical(ideology_probs, age_index, ideology_rng)
    ideology3 = np.asarray(IDEOLOGY_3)[ideology]
    party = categorical(
        party_table(beliefs), ideology3 * len(RACE_GROUPS) + race_index(race_groups), party_rng
    )
    ideology_labels = pl.Series(beliefs.ideologies, dtype=pl.String).gather(
        pl.Series(ideology, dtype=pl.UInt32)
    )
    party_labels = pl.Series(beliefs.parties, dtype=pl.String).gather(
        pl.Series(party, dtype=pl.UInt32)
    )
    is_adult = pl.Series(adult)
    frame = pl.DataFrame(
        {"adult": is_adult, "ideology": ideology_labels, "party": party_labels, "v": child_values}
    )
    out = frame.select(
        pl.when(pl.col("adult"))
        .then(pl.col("ideology"))
        .otherwise(pl.lit(beliefs.child_ideology_prefix) + pl.col("v"))
        .alias("ideology"),
        pl.when(pl.col("adult"))
        .then(pl.col("party"))
        .otherwise(pl.lit(beliefs.child_political_views))
        .alias("political views"),
    )
    return out.get_column("ideology"), out.get_column("political views")
