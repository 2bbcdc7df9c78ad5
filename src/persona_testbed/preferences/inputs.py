"""The run's personas and prompts as the preference stage uses them (read through their
contracts, so a missing file or column is one line naming it)."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from persona_testbed.contracts import PERSONAS, PROMPTS, persona_card
from persona_testbed.contracts.artifact import RunPlace
from persona_testbed.errors import InputError


def load_personas(run: RunPlace, limit: int | None = None) -> pl.DataFrame:
    """`persona_id`, `persona_text` (the canonical text form) and `persona_split`."""
    path = PERSONAS.file(run)
    frame = PERSONAS.read(run)
    if frame["persona_id"].is_duplicated().any():
        duplicate = frame.filter(pl.col("persona_id").is_duplicated())["persona_id"][0]
        raise InputError(f"{path}: duplicate persona_id '{duplicate}'")
    if limit is not None:
        frame = frame.head(limit)
    texts = [persona_card(row, path) for row in frame.iter_rows(named=True)]
    split = frame["split"] if "split" in frame.columns else pl.Series([None] * len(frame))
    return pl.DataFrame(
        {
            "persona_id": frame["persona_id"].cast(pl.String),
            "persona_text": texts,
            "persona_split": split.cast(pl.String),
        },
        schema={"persona_id": pl.String, "persona_text": pl.String, "persona_split": pl.String},
    )


@dataclass(frozen=True)
class PromptPools:
    train: pl.DataFrame  # prompt_id, prompt, topic
    heldout: pl.DataFrame


def load_prompt_pools(run: RunPlace) -> PromptPools:
    """The kept prompts of the run's prompts.parquet, as the train and held-out pools."""
    path = PROMPTS.file(run)
    frame = PROMPTS.read(run)
    kept = frame.filter(pl.col("kept")).select(
        "prompt_id", pl.col("text").alias("prompt"), "topic", "split"
    )
    unknown = kept.filter(~pl.col("split").is_in(["train", "heldout"]))
    if len(unknown):
        row = unknown.row(0, named=True)
        raise InputError(
            f"{path}: prompt '{row['prompt_id']}': split must be train or heldout, "
            f"not {row['split']!r}"
        )
    train = kept.filter(pl.col("split") == "train").drop("split")
    heldout = kept.filter(pl.col("split") == "heldout").drop("split")
    if train.is_empty():
        raise InputError(f"{path}: no kept train prompts")
    return PromptPools(train=train, heldout=heldout)
