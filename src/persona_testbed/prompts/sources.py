"""Prompt sources: PRISM conversations, a plain question file, or the bundled demo set.

Every reader returns the same frame: `prompt_id`, `text`, `source`, `source_id`, `topic_tag`
(a hand-written topic, None where the source has none) and `conversation_type` (PRISM only).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path
from typing import Any

import polars as pl

from persona_testbed.errors import InputError

PRISM_FIELDS = ("conversation_id", "opening_prompt")
SOURCE_SCHEMA: dict[str, pl.DataType] = {
    "prompt_id": pl.String(),
    "text": pl.String(),
    "source": pl.String(),
    "source_id": pl.String(),
    "topic_tag": pl.String(),
    "conversation_type": pl.String(),
}
DEMO_RESOURCE = "demo_questions.jsonl"


def demo_questions_path() -> Path:
    return Path(str(files("persona_testbed.prompts").joinpath("data", DEMO_RESOURCE)))


def _jsonl_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        lines = path.read_text("utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read ({exc})") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}: line {number}: not valid JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise InputError(f"{path}: line {number}: expected a JSON object")
        yield number, row


def _text_field(path: Path, where: str, row: dict[str, Any], field: str) -> str:
    value = row.get(field)
    if value is None:
        raise InputError(f"{path}: {where}: missing field '{field}'")
    if not isinstance(value, str | int):
        raise InputError(f"{path}: {where}: field '{field}' must be text")
    return str(value)


def _frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=SOURCE_SCHEMA)


def _check_unique_ids(path: Path, frame: pl.DataFrame) -> pl.DataFrame:
    duplicated = frame.filter(pl.col("prompt_id").is_duplicated())
    if not duplicated.is_empty():
        raise InputError(f"{path}: duplicate id '{duplicated['source_id'][0]}'")
    return frame


def _prism_records(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """(location, record) pairs from a JSONL/Parquet file or a `datasets` save_to_disk folder."""
    if path.is_dir():
        for index, record in enumerate(_load_hf_rows(path)):
            yield f"row {index}", record
    elif path.suffix == ".parquet":
        try:
            frame = pl.read_parquet(path)
        except (OSError, pl.exceptions.PolarsError) as exc:
            raise InputError(f"{path}: cannot read Parquet ({exc})") from None
        for index, record in enumerate(frame.iter_rows(named=True)):
            yield f"row {index}", record
    else:
        for number, record in _jsonl_rows(path):
            yield f"line {number}", record


def _load_hf_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of a Hugging Face `datasets` copy saved with `save_to_disk` (its train split)."""
    try:
        import datasets
    except ImportError:
        raise InputError(
            f"{path}: reading a datasets folder needs `pip install datasets`"
        ) from None
    try:
        loaded = datasets.load_from_disk(str(path))
    except (FileNotFoundError, ValueError) as exc:
        raise InputError(f"{path}: not a datasets save_to_disk folder ({exc})") from None
    if isinstance(loaded, datasets.DatasetDict):
        split = "train" if "train" in loaded else next(iter(loaded))
        loaded = loaded[split]
    columns = set(loaded.column_names)
    missing = [f for f in PRISM_FIELDS if f not in columns]
    if missing:
        raise InputError(f"{path}: missing PRISM column(s) {', '.join(missing)}")
    keep = [c for c in (*PRISM_FIELDS, "conversation_type") if c in columns]
    return list(loaded.select_columns(keep).to_list())


def read_prism(path: Path) -> pl.DataFrame:
    """PRISM `conversations.jsonl` (or its Parquet / `datasets` copy): one prompt per
    conversation, its `opening_prompt`."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: not found")
    rows = []
    for where, record in _prism_records(path):
        conversation_id = _text_field(path, where, record, "conversation_id")
        text = _text_field(path, where, record, "opening_prompt")
        kind = record.get("conversation_type")
        rows.append(
            {
                "prompt_id": f"prism-{conversation_id}",
                "text": text,
                "source": "prism",
                "source_id": conversation_id,
                "topic_tag": None,
                "conversation_type": str(kind) if kind is not None else None,
            }
        )
    if not rows:
        raise InputError(f"{path}: holds no PRISM conversations")
    return _check_unique_ids(path, _frame(rows))


def _read_table(path: Path) -> pl.DataFrame:
    try:
        if path.suffix.lower() == ".csv":
            return pl.read_csv(path, infer_schema=False)
        if path.suffix.lower() in {".jsonl", ".ndjson", ".json"}:
            records = [record for _, record in _jsonl_rows(path)]
            return pl.DataFrame(records, infer_schema_length=None)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise InputError(f"{path}: cannot read ({exc})") from None
    raise InputError(f"{path}: expected a .jsonl or .csv file of questions")


def read_questions(
    path: Path,
    *,
    text_column: str = "text",
    id_column: str | None = None,
    topic_column: str | None = None,
    source: str = "questions",
) -> pl.DataFrame:
    """A JSONL or CSV file of questions; `text_column` names the question text."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: not found")
    table = _read_table(path)
    for flag, column in (("text", text_column), ("id", id_column), ("topic", topic_column)):
        if column is not None and column not in table.columns:
            raise InputError(
                f"{path}: no {flag} column '{column}' (columns: {', '.join(table.columns)})"
            )
    rows = []
    for index, record in enumerate(table.iter_rows(named=True)):
        where = f"row {index + 1}"
        text = record[text_column]
        if text is not None and not isinstance(text, str):
            raise InputError(f"{path}: {where}: column '{text_column}' must be text")
        source_id = None if id_column is None else record[id_column]
        if id_column is not None and source_id is None:
            raise InputError(f"{path}: {where}: empty id in column '{id_column}'")
        topic = None if topic_column is None else record[topic_column]
        rows.append(
            {
                "prompt_id": f"{source}-{source_id}"
                if source_id is not None
                else f"{source}-{index + 1:05d}",
                "text": text or "",
                "source": source,
                "source_id": None if source_id is None else str(source_id),
                "topic_tag": None if topic in (None, "") else str(topic),
                "conversation_type": None,
            }
        )
    if not rows:
        raise InputError(f"{path}: holds no questions")
    return _check_unique_ids(path, _frame(rows))


def read_demo() -> pl.DataFrame:
    """The bundled demo set: hand-written contested questions, each tagged with its topic."""
    frame = read_questions(
        demo_questions_path(), id_column="id", topic_column="topic", source="demo"
    )
    # Demo ids already say "demo-NNN": keep them as they are.
    return frame.with_columns(pl.col("source_id").alias("prompt_id"))
