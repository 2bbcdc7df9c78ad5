"""Fake run-directory inputs for tests and benchmarks: personas.parquet and prompts.parquet rows
in the shape the stages read, deterministic from a row index.

One place for the columns, so a change to the personas or prompts contract changes every test's
fake data at once; each test folder picks only the attribute values its assertions need."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import polars as pl

from persona_testbed.contracts import ATTRIBUTES

# Column types of personas.parquet: attributes are text except the age.
PERSONA_SCHEMA: dict[str, type[pl.DataType]] = {
    **{name: pl.String for name in ATTRIBUTES},
    "age": pl.Int64,
    "persona_id": pl.String,
    "split": pl.String,
    "source_state": pl.String,
    "source_serialno": pl.String,
    "source_sporder": pl.Int64,
    "weight": pl.Float64,
}
Fill = Callable[[str, int], Any]


def placeholder(name: str, index: int) -> str:
    """A value for every attribute that no assertion looks at ("religion value 2")."""
    return f"{name} value {index % 3}"


def persona_row(
    index: int,
    split: str,
    values: Mapping[str, Any] | None = None,
    *,
    persona_id: str | None = None,
    fill: Fill | None = placeholder,
) -> dict[str, Any]:
    """A personas.parquet row, columns in its order: id `p000`-style unless given, each
    attribute from `fill` (None: left empty), one Vermont PUMS source; then `values` (attributes
    or source columns) on top."""
    row: dict[str, Any] = {"persona_id": persona_id or f"p{index:03d}", "split": split}
    row.update({name: fill(name, index) if fill else None for name in ATTRIBUTES})
    row.update(
        {
            "source_state": "50",
            "source_serialno": f"2018HU{index:07d}",
            "source_sporder": 1,
            "weight": 1.0,
        }
    )
    row.update(values or {})
    return row


def personas_frame(rows: Iterable[Mapping[str, Any]]) -> pl.DataFrame:
    """Persona rows as personas.parquet holds them (PERSONA_SCHEMA column types)."""
    table = [dict(row) for row in rows]
    columns = dict.fromkeys(name for row in table for name in row)
    return pl.DataFrame(
        table, schema={name: PERSONA_SCHEMA.get(name, pl.String) for name in columns}
    )


def write_personas(path: Path, rows: Iterable[Mapping[str, Any]]) -> Path:
    personas_frame(rows).write_parquet(path)
    return path


def prompt_row(
    index: int, text: str, split: str | None, *, topic: str = "politics", prompt_id: str = ""
) -> dict[str, Any]:
    """A kept prompts.parquet row (a demo-source question)."""
    return {
        "prompt_id": prompt_id or f"q{index:03d}",
        "text": text,
        "source": "demo",
        "source_id": None,
        "topic": topic,
        "split": split,
        "kept": True,
        "drop_reason": None,
    }


def dropped(row: Mapping[str, Any], prompt_id: str = "dropped") -> dict[str, Any]:
    """`row` as a prompt the filters dropped (no split)."""
    return {**row, "prompt_id": prompt_id, "split": None, "kept": False}


def write_prompts(path: Path, rows: Iterable[Mapping[str, Any]]) -> Path:
    pl.DataFrame(list(rows), infer_schema_length=None).write_parquet(path)
    return path
