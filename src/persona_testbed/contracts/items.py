"""Preference pairs as A/B items: the one mapping both the agreement study and the annotation
app use, so a human's label and a model's label of the same pair share an `item_id`.

Answer A = `chosen` (y_w), answer B = `rejected` (y_l), question = `prompt`, item_id =
`pair_id`. The persona card is the canonical text of the run's personas.parquet, or the pair's
own `persona_text` where the persona is not there.
"""

from __future__ import annotations

import polars as pl

from persona_testbed.contracts.artifact import RunPlace
from persona_testbed.contracts.artifacts import ITEM_COLUMNS, PERSONAS, PREFERENCES
from persona_testbed.contracts.persona import persona_cards
from persona_testbed.errors import InputError

PAIR_COLUMNS = PREFERENCES.column_names


def persona_texts(run: RunPlace) -> dict[str, str]:
    """persona_id -> canonical persona card, from the run's personas.parquet (empty when the
    run has none)."""
    if not PERSONAS.exists(run):
        return {}
    frame = PERSONAS.read(run)
    return persona_cards(frame.iter_rows(named=True), PERSONAS.file(run))


def preference_items(run: RunPlace, split: str | None = None) -> pl.DataFrame:
    """Every usable preference pair of `run` as an item: the ITEM_COLUMNS plus `split` (null
    where the pairs have none). Pairs whose generation failed (an empty answer) are left out;
    `split` keeps only that split's pairs."""
    path = PREFERENCES.file(run)
    pairs = PREFERENCES.read(run)
    if split is not None:
        if "split" not in pairs.columns:
            raise InputError(f"{path}: missing column(s) 'split' (asked for split '{split}')")
        pairs = pairs.filter(pl.col("split") == split)
    for name in ("split", "persona_text"):
        if name not in pairs.columns:
            pairs = pairs.with_columns(pl.lit(None, dtype=pl.String).alias(name))
    pairs = pairs.filter(
        pl.all_horizontal(
            pl.col(name).cast(pl.String).str.strip_chars().str.len_chars() > 0
            for name in PAIR_COLUMNS
        )
    )
    texts = persona_texts(run)
    items = pairs.select(
        pl.col("persona_id").cast(pl.String),
        pl.col("persona_id")
        .cast(pl.String)
        .replace_strict(texts, default=None, return_dtype=pl.String)
        .fill_null(pl.col("persona_text").cast(pl.String))
        .alias("persona_text"),
        pl.col("pair_id").cast(pl.String).alias("item_id"),
        pl.col("prompt").cast(pl.String).alias("question"),
        pl.col("chosen").cast(pl.String).alias("answer_a"),
        pl.col("rejected").cast(pl.String).alias("answer_b"),
        pl.col("split").cast(pl.String),
    )
    no_card = items.filter(
        pl.col("persona_text").is_null() | (pl.col("persona_text").str.strip_chars() == "")
    )
    if no_card.height:
        raise InputError(
            f"{path}: persona '{no_card['persona_id'][0]}' has no persona_text and is not in "
            f"{PERSONAS.file(run)}"
        )
    repeated = items.filter(pl.col("item_id").is_duplicated())
    if repeated.height:
        raise InputError(f"{path}: pair_id '{repeated['item_id'][0]}' is not unique")
    return items.select(*ITEM_COLUMNS, "split")
