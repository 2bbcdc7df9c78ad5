"""The questions of the leave-one-out study: a seeded sample of the run's curated prompts
(kept, train or held-out) or of a questions file."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from persona_testbed.contracts import PROMPTS
from persona_testbed.errors import InputError
from persona_testbed.seeding import child_rng

TEXT_COLUMNS = ("text", "question", "prompt")


def run_questions(run: Path) -> tuple[pl.DataFrame, Path]:
    """Kept prompts of the run's prompts.parquet with a train or held-out split."""
    path = PROMPTS.file(run)
    prompts = PROMPTS.read(run)
    kept = prompts.filter(pl.col("kept") & pl.col("split").is_in(["train", "heldout"]))
    return kept.select(pl.col("prompt_id").cast(pl.String), pl.col("text").cast(pl.String)), path


def file_questions(path: Path) -> pl.DataFrame:
    """Questions from a .txt (one per line), .csv, .jsonl or .parquet file; the text column is
    `text`, `question` or `prompt`, the id column `prompt_id` (default: q0001, ...)."""
    if not path.is_file():
        raise InputError(f"{path}: questions file not found")
    suffix = path.suffix.lower()
    try:
        if suffix == ".txt":
            lines = [line.strip() for line in path.read_text("utf-8").splitlines()]
            frame = pl.DataFrame(
                {"text": [line for line in lines if line]}, schema={"text": pl.String}
            )
        elif suffix == ".csv":
            frame = pl.read_csv(path, infer_schema=False)
        elif suffix in (".jsonl", ".ndjson"):
            frame = pl.read_ndjson(path, infer_schema_length=None)
        elif suffix == ".parquet":
            frame = pl.read_parquet(path)
        else:
            raise InputError(
                f"{path}: unsupported questions file type '{suffix}' "
                "(use .txt, .csv, .jsonl or .parquet)"
            )
    except (pl.exceptions.PolarsError, OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read questions ({str(exc).splitlines()[0]})") from None
    column = next((name for name in TEXT_COLUMNS if name in frame.columns), None)
    if column is None:
        raise InputError(f"{path}: no question column (one of {', '.join(TEXT_COLUMNS)})")
    frame = frame.with_columns(pl.col(column).cast(pl.String).str.strip_chars().alias("text"))
    empty = frame.with_row_index("row").filter(
        pl.col("text").is_null() | (pl.col("text").str.len_chars() == 0)
    )
    if empty.height:
        raise InputError(f"{path}: row {empty['row'][0] + 1}: empty question")
    if "prompt_id" not in frame.columns:
        frame = frame.with_row_index("row", offset=1).with_columns(
            pl.format("q{}", pl.col("row").cast(pl.String).str.zfill(4)).alias("prompt_id")
        )
    return frame.select(pl.col("prompt_id").cast(pl.String), "text")


def sample_questions(questions: pl.DataFrame, count: int, seed: int, source: str) -> pl.DataFrame:
    """`count` questions drawn without replacement (all of them when there are fewer)."""
    if questions.is_empty():
        raise InputError(f"{source}: no usable questions")
    repeated = questions.filter(pl.col("prompt_id").is_duplicated())
    if repeated.height:
        raise InputError(f"{source}: prompt_id '{repeated['prompt_id'][0]}' is not unique")
    if count >= questions.height:
        return questions
    picked = child_rng(seed, "loo-questions").choice(questions.height, size=count, replace=False)
    return questions[sorted(int(i) for i in picked)]
