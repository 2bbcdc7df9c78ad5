"""Procedural enrichment: Big Five, curated lists, religion, ideology and political views.

Every draw has its own seeded stream (seeding.child_rng), so the same seed gives the same values
and a new kind of draw never shifts the existing ones.
"""

from __future__ import annotations

import polars as pl

from persona_testbed.census.beliefs import draw_politics, draw_religion
from persona_testbed.census.bigfive import draw_big_five
from persona_testbed.census.curated import draw_curated
from persona_testbed.census.decode import RACE_GROUP
from persona_testbed.seeding import child_rng

# Core values are not one of the 33 attributes: they seed a child's "ideology" and steer the
# LLM fill. Kept in this helper column until the output is written.
CORE_VALUES = "_core_values"


def enrich(frame: pl.DataFrame, seed: int) -> pl.DataFrame:
    """Add the procedural attributes to sampled census rows (needs `age` and the race group)."""
    n = frame.height
    ages = frame.get_column("age").to_numpy()
    race_groups = frame.get_column(RACE_GROUP)
    core_values = draw_curated("core values", ages, child_rng(seed, "core values"))
    ideology, political_views = draw_politics(
        ages,
        race_groups,
        core_values,
        child_rng(seed, "ideology"),
        child_rng(seed, "political views"),
    )

    def curated(name: str) -> pl.Series:
        return draw_curated(name, ages, child_rng(seed, name)).alias(name)

    return frame.with_columns(
        draw_big_five(n, child_rng(seed, "big five")).alias("big five scores"),
        curated("defining quirks"),
        curated("mannerisms"),
        curated("personal time"),
        curated("lifestyle"),
        ideology.alias("ideology"),
        political_views.alias("political views"),
        draw_religion(ages, race_groups, child_rng(seed, "religion")).alias("religion"),
        core_values.alias(CORE_VALUES),
    )
