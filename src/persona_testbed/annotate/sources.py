"""Where study items come from: a run's preference pairs, or an items file.

Both give one frame with the columns in ITEM_COLUMNS, one row per candidate item, answer_a
being y_w (`chosen`) and answer_b y_l (`rejected`) when the items come from a run.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import polars as pl

from persona_testbed.contracts import ITEM_COLUMNS, preference_items
from persona_testbed.errors import InputError

ITEMS_FILE_REQUIRED = ("persona_id", "persona_text", "question", "answer_a", "answer_b")


def stable_item_id(persona_id: str, question: str, answer_a: str, answer_b: str) -> str:
    """An id that stays the same for the same (persona, question, answer pair)."""
    digest = hashlib.sha256("\x1f".join((persona_id, question, answer_a, answer_b)).encode())
    return "item-" + digest.hexdigest()[:16]


def _read_table(path: Path) -> pl.DataFrame:
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return pl.read_csv(path, infer_schema=False)
        if suffix in (".jsonl", ".ndjson"):
            return pl.read_ndjson(path, infer_schema_length=None)
        if suffix == ".parquet":
            return pl.read_parquet(path)
    except (pl.exceptions.PolarsError, OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read ({str(exc).splitlines()[0]})") from None
    raise InputError(f"{path}: unsupported file type '{suffix}' (use .csv, .jsonl or .parquet)")


def _require_columns(frame: pl.DataFrame, path: Path, columns: tuple[str, ...]) -> None:
    missing = [name for name in columns if name not in frame.columns]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(repr(m) for m in missing)}")


def _as_text(frame: pl.DataFrame, path: Path, columns: tuple[str, ...]) -> pl.DataFrame:
    try:
        return frame.with_columns(pl.col(name).cast(pl.String) for name in columns)
    except pl.exceptions.PolarsError:
        raise InputError(f"{path}: columns {', '.join(columns)} must hold text") from None


def _check_consistent_persona_text(frame: pl.DataFrame, path: Path) -> None:
    seen: dict[str, str] = {}
    for row_number, (persona_id, text) in enumerate(
        frame.select("persona_id", "persona_text").iter_rows(), start=1
    ):
        if seen.setdefault(persona_id, text) != text:
            raise InputError(
                f"{path}: row {row_number}: persona_text of persona '{persona_id}' differs "
                "from its earlier rows"
            )


def read_items_file(path: Path) -> pl.DataFrame:
    """Items from a CSV, JSONL or Parquet file (schema in docs/annotate.md)."""
    frame = _read_table(path)
    _require_columns(frame, path, ITEMS_FILE_REQUIRED)
    if "item_id" not in frame.columns:
        frame = frame.with_columns(pl.lit(None, dtype=pl.String).alias("item_id"))
    frame = _as_text(frame, path, ITEM_COLUMNS)
    for row_number, row in enumerate(frame.select(ITEM_COLUMNS).iter_rows(named=True), start=1):
        for name in ITEMS_FILE_REQUIRED:
            if row[name] is None or not str(row[name]).strip():
                raise InputError(f"{path}: row {row_number}: empty '{name}'")
    item_ids = [
        given if given is not None and given.strip() else stable_item_id(*fields)
        for given, *fields in frame.select(
            "item_id", "persona_id", "question", "answer_a", "answer_b"
        ).iter_rows()
    ]
    frame = frame.with_columns(pl.Series("item_id", item_ids, dtype=pl.String)).select(ITEM_COLUMNS)
    repeated = frame.with_row_index("row").filter(~pl.col("item_id").is_first_distinct())
    if repeated.height:
        row_number, item_id = repeated.row(0)[0] + 1, repeated.get_column("item_id")[0]
        raise InputError(f"{path}: row {row_number}: item_id '{item_id}' is used more than once")
    _check_consistent_persona_text(frame, path)
    return frame


def read_run_items(run: Path, split: str | None = None) -> pl.DataFrame:
    """Candidate items from the run's preference pairs (`contracts.preference_items`: question
    = prompt, answer_a = chosen, answer_b = rejected, item_id = pair_id, the canonical persona
    card), so labels made here match the agreement stage's items by `item_id`."""
    if not run.is_dir():
        raise InputError(f"{run}: run directory not found")
    return preference_items(run, split).select(ITEM_COLUMNS)
