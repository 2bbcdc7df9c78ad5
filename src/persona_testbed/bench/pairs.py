"""Inputs of the bench: personas and prompts (run-directory artifacts or files) and the
(persona, question) pairs sampled from them."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl

from persona_testbed.contracts import ATTRIBUTES, PERSONAS, PROMPTS, persona_card
from persona_testbed.errors import InputError
from persona_testbed.run.read import read_parquet

PersonaSplit = Literal["test", "train", "all"]
PromptSplit = Literal["heldout", "train", "all"]


def read_table(path: Path) -> pl.DataFrame:
    """A Parquet or JSONL table (the run's artifact or the user's own file); a clear error
    naming the file otherwise."""
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return read_parquet(path)
    try:
        if suffix in {".jsonl", ".ndjson"}:
            return pl.read_ndjson(path, infer_schema_length=None)
    except (pl.exceptions.PolarsError, OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{path}: cannot read the table ({first})") from None
    raise InputError(f"{path}: expected a .parquet or .jsonl file")


def _require(frame: pl.DataFrame, path: Path, columns: tuple[str, ...]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(repr(c) for c in missing)}")


def load_personas(path: Path, split: PersonaSplit = "test") -> pl.DataFrame:
    """Personas (the personas.parquet contract, or a JSONL file with the same columns) with
    their canonical text. Attribute columns the file lacks are treated as not applicable. Adds
    `persona_text`.
    """
    frame = PERSONAS.check(read_table(path), path)
    if split != "all":
        if "split" not in frame.columns:
            raise InputError(f"{path}: no 'split' column to select {split} personas from")
        frame = frame.filter(pl.col("split") == split)
        if frame.is_empty():
            raise InputError(f"{path}: no personas with split '{split}'")
    frame = frame.with_columns(
        pl.lit(None).alias(name) for name in ATTRIBUTES if name not in frame.columns
    ).with_columns(pl.col("persona_id").cast(pl.String))
    if frame.get_column("persona_id").is_null().any():
        raise InputError(f"{path}: empty persona_id")
    duplicated = frame.filter(pl.col("persona_id").is_duplicated()).get_column("persona_id")
    if len(duplicated):
        raise InputError(f"{path}: persona_id '{duplicated[0]}' appears more than once")
    texts = [persona_card(row, path) for row in frame.iter_rows(named=True)]
    return frame.with_columns(pl.Series("persona_text", texts, dtype=pl.String))


def load_prompts(path: Path, split: PromptSplit = "heldout") -> pl.DataFrame:
    """Prompts (the prompts.parquet contract, or the user's own file with at least prompt_id
    and text): the kept rows of the split. A file without a `kept` column keeps every row;
    without a `split` column, `split` is ignored.
    """
    frame = read_table(path)
    _require(frame, path, ("prompt_id", "text"))
    frame = frame.with_columns(pl.col("prompt_id").cast(pl.String), pl.col("text").cast(pl.String))
    if "kept" in frame.columns:
        frame = frame.filter(pl.col("kept").fill_null(False))
    if split != "all" and "split" in frame.columns:
        frame = frame.filter(pl.col("split") == split)
    if "topic" not in frame.columns:
        frame = frame.with_columns(pl.lit(None, dtype=pl.String).alias("topic"))
    frame = frame.filter(pl.col("text").str.strip_chars().str.len_chars() > 0)
    if frame.is_empty():
        where = f"kept prompts with split '{split}'" if split != "all" else "non-empty prompts"
        raise InputError(f"{path}: no {where}")
    duplicated = frame.filter(pl.col("prompt_id").is_duplicated()).get_column("prompt_id")
    if len(duplicated):
        raise InputError(f"{path}: prompt_id '{duplicated[0]}' appears more than once")
    return frame.select("prompt_id", pl.col("text").alias("question"), "topic")


def sample_pairs(
    personas: pl.DataFrame, prompts: pl.DataFrame, n: int, rng: np.random.Generator
) -> pl.DataFrame:
    """`n` distinct (persona, question) pairs drawn uniformly from personas x prompts.

    Columns: pair_id, persona_id, prompt_id, question, topic, persona_text and the 33
    attribute columns (for slices). Sorted by persona so prompts sharing a persona prefix
    follow each other (local models reuse the prompt cache).
    """
    total = personas.height * prompts.height
    if n > total:
        raise InputError(
            f"--n {n} asks for more pairs than there are: {personas.height} personas x "
            f"{prompts.height} prompts = {total}"
        )
    chosen = np.sort(rng.choice(total, size=n, replace=False))
    persona_index = pl.Series("persona_index", chosen // prompts.height, dtype=pl.UInt32)
    prompt_index = pl.Series("prompt_index", chosen % prompts.height, dtype=pl.UInt32)
    people = personas.select("persona_id", "persona_text", *ATTRIBUTES)[persona_index]
    questions = prompts[prompt_index]
    pairs = pl.concat([people, questions], how="horizontal")
    return pairs.select(
        (pl.col("persona_id") + "|" + pl.col("prompt_id")).alias("pair_id"),
        "persona_id",
        "prompt_id",
        "question",
        "topic",
        "persona_text",
        *ATTRIBUTES,
    )


def resolve_inputs(
    run_path: Path, personas: Path | None, prompts: Path | None
) -> tuple[Path, Path]:
    """Input files: the given ones, else the run directory's artifacts."""
    personas_path = personas or PERSONAS.file(run_path)
    prompts_path = prompts or PROMPTS.file(run_path)
    for path, flag, stage in (
        (personas_path, "--personas", "personas"),
        (prompts_path, "--prompts", "prompts"),
    ):
        if not path.is_file():
            raise InputError(f"{path}: not found (run the {stage} stage first or pass {flag} FILE)")
    return personas_path, prompts_path
