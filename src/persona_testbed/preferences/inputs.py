"""Reading the run's personas and prompts for the preference stage, with clear errors."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl
from pydantic import ValidationError

from persona_testbed.errors import InputError

PERSONAS_PARQUET = "personas.parquet"
PROMPTS_PARQUET = "prompts.parquet"
PROMPT_COLUMNS = ("prompt_id", "text", "topic", "split", "kept")


def _read(path: Path, stage_hint: str) -> pl.DataFrame:
    if not path.is_file():
        raise InputError(f"{path}: not found (run `persona {stage_hint}` first)")
    try:
        return pl.read_parquet(path)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise InputError(f"{path}: cannot read Parquet ({exc})") from None


def load_personas(path: Path, limit: int | None = None) -> pl.DataFrame:
    """`persona_id`, `persona_text` (the canonical text form) and `persona_split`."""
    from persona_testbed.census.persona import ATTRIBUTES, Persona

    frame = _read(path, "personas")
    if "persona_id" not in frame.columns:
        raise InputError(f"{path}: missing column 'persona_id'")
    if not set(ATTRIBUTES) & set(frame.columns):
        raise InputError(f"{path}: none of the 33 persona attribute columns is present")
    if frame["persona_id"].is_duplicated().any():
        duplicate = frame.filter(pl.col("persona_id").is_duplicated())["persona_id"][0]
        raise InputError(f"{path}: duplicate persona_id '{duplicate}'")
    if limit is not None:
        frame = frame.head(limit)
    texts = []
    for index, row in enumerate(frame.iter_rows(named=True)):
        try:
            texts.append(Persona.from_row(row).to_text())
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"])
            raise InputError(f"{path}: row {index}: field '{field}': {first['msg']}") from None
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


def load_prompt_pools(path: Path) -> PromptPools:
    """The kept prompts of prompts.parquet, as the train and held-out pools."""
    frame = _read(path, "prompts")
    missing = [c for c in PROMPT_COLUMNS if c not in frame.columns]
    if missing:
        raise InputError(f"{path}: missing column '{missing[0]}'")
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
