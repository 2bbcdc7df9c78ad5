"""What a run-directory artifact is: its path, its columns, the stage that writes it, one reader.

Stages hand each other files, never objects: an `Artifact` is the one place that spells a file's
name, says which columns its readers may rely on, and reads it. Every reader fails with one line
naming the file (missing, damaged, a column missing or of the wrong type); every writer checks
its frame against the same columns, so a stage that stops writing a column fails its own tests
instead of a later stage's run.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import polars as pl

from persona_testbed.errors import InputError
from persona_testbed.run import RunDir, StageRun
from persona_testbed.run.read import read_parquet

RunPlace = RunDir | Path


class ColumnType(Enum):
    """The dtype family a reader relies on (`ANY`: only that the column is there)."""

    ANY = "any"
    TEXT = "text"
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"

    def accepts(self, dtype: pl.DataType) -> bool:
        if self is ColumnType.ANY or dtype == pl.Null:
            return True
        if self is ColumnType.TEXT:
            return dtype in (pl.String, pl.Categorical, pl.Enum)
        if self is ColumnType.INTEGER:
            return dtype.is_integer()
        if self is ColumnType.NUMBER:
            return dtype.is_numeric()
        return dtype == pl.Boolean


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType = ColumnType.ANY

    def __str__(self) -> str:
        return self.name if self.type is ColumnType.ANY else f"{self.name} ({self.type.value})"


def columns(*names: str, type: ColumnType = ColumnType.ANY) -> tuple[Column, ...]:
    """Several columns of one type."""
    return tuple(Column(name, type) for name in names)


def run_path(run: RunPlace) -> Path:
    return run.path if isinstance(run, RunDir) else Path(run)


@dataclass(frozen=True)
class Artifact:
    """A file (or folder) a stage writes into the run directory."""

    path: str  # relative to the run directory
    writer: str  # the manifest name of the stage that writes it
    command: str  # the command that runs that stage (named in "not found" errors)
    what: str  # a short noun for messages: "personas", "preference pairs"
    description: str
    readers: tuple[str, ...] = ()  # the stages (and the report) that read it

    def file(self, run: RunPlace) -> Path:
        return run_path(run) / self.path

    def exists(self, run: RunPlace) -> bool:
        return self.file(run).exists()

    def require(self, run: RunPlace) -> Path:
        """The artifact's path in `run`; one line naming it when it is not there."""
        path = self.file(run)
        if not path.exists():
            raise InputError(f"{path}: {self.what} not found (run `{self.command}` first)")
        return path

    @property
    def contract(self) -> str:
        """What a reader may rely on, in words (the artifact table of docs/architecture.md)."""
        return "-"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _read_table(path: Path) -> pl.DataFrame:
    """An artifact's table by its suffix (Parquet, JSONL or CSV); one line naming it if damaged."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return read_parquet(path)
    try:
        if suffix in (".jsonl", ".ndjson"):
            return pl.read_ndjson(path, infer_schema_length=None)
        if suffix == ".csv":
            return pl.read_csv(path, infer_schema_length=None)
    except (pl.exceptions.PolarsError, OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read the table ({_first_line(exc)})") from None
    raise InputError(f"{path}: expected a .parquet, .jsonl or .csv file")


@dataclass(frozen=True)
class Table(Artifact):
    """A table artifact: `columns` every reader relies on; `optional` ones the writer always
    writes but readers cope without (a user's own file may lack them). Others may follow."""

    columns: tuple[Column, ...] = ()
    optional: tuple[Column, ...] = ()

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)

    @property
    def contract(self) -> str:
        required = ", ".join(str(column) for column in self.columns) or "-"
        if not self.optional:
            return required
        return f"{required}; also written: {', '.join(str(c) for c in self.optional)}"

    def problem(self, frame: pl.DataFrame, *, writing: bool = False) -> str | None:
        """Why `frame` breaks the contract (None: it keeps it). A writer owes the optional
        columns too."""
        wanted = (*self.columns, *self.optional) if writing else self.columns
        missing = [column.name for column in wanted if column.name not in frame.columns]
        if missing:
            return f"missing column(s) {', '.join(repr(name) for name in missing)}"
        for column in (*self.columns, *self.optional):
            dtype = frame.schema.get(column.name)
            if dtype is None or column.type.accepts(dtype):
                continue
            # A column with no value at all has no type to check (a CSV reads it as text).
            if frame.get_column(column.name).null_count() < frame.height:
                return f"column '{column.name}' holds {dtype}, not {column.type.value}"
        return None

    def check(self, frame: pl.DataFrame, path: Path | str) -> pl.DataFrame:
        """`frame` itself when it has the contract's columns; one line naming `path` if not."""
        problem = self.problem(frame)
        if problem is not None:
            raise InputError(f"{path}: {problem}")
        return frame

    def read(self, run: RunPlace) -> pl.DataFrame:
        """The artifact of run directory `run`, checked against the contract."""
        path = self.require(run)
        return self.check(_read_table(path), path)

    def check_written(self, frame: pl.DataFrame) -> None:
        """Stop a frame that breaks the contract before it is written: a bug in the writing
        stage."""
        problem = self.problem(frame, writing=True)
        if problem is not None:
            raise ValueError(
                f"{self.writer} stage: {self.path} would break its contract: {problem}"
            )

    def write(self, stage: StageRun, frame: pl.DataFrame) -> Path:
        """Publish `frame` as this artifact; a frame that breaks the contract is a bug in the
        writing stage, so it stops before anything is written."""
        self.check_written(frame)
        if self.path.endswith(".csv"):
            return stage.write_file(self.path, frame.write_csv)
        if self.path.endswith(".jsonl"):
            return stage.write_file(self.path, frame.write_ndjson)
        return stage.write_parquet(self.path, frame)

    @contextmanager
    def write_chunks(self, stage: StageRun) -> Iterator[Callable[[pl.DataFrame], None]]:
        """Publish this (Parquet) artifact a frame at a time: the block gets a function that
        appends one frame as a row group, each checked against the contract like `write`. The
        file appears, complete, only when the block ends without error."""
        if not self.path.endswith(".parquet"):
            raise ValueError(f"{self.path}: only a Parquet artifact is written in chunks")
        with stage.parquet_chunks(self.path) as chunks:

            def add(frame: pl.DataFrame) -> None:
                self.check_written(frame)
                chunks.write(frame)

            yield add


@dataclass(frozen=True)
class Document(Artifact):
    """A JSON artifact and the top-level keys its readers rely on."""

    keys: tuple[str, ...] = ()

    @property
    def contract(self) -> str:
        return ", ".join(self.keys) or "-"

    def read(self, run: RunPlace) -> dict[str, Any]:
        path = self.require(run)
        try:
            document = json.loads(path.read_text("utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise InputError(
                f"{path}: not readable JSON ({_first_line(exc)}); re-run `{self.command}`"
            ) from None
        if not isinstance(document, dict):
            raise InputError(f"{path}: expected a JSON object")
        missing = [key for key in self.keys if key not in document]
        if missing:
            raise InputError(f"{path}: missing key(s) {', '.join(repr(k) for k in missing)}")
        return document

    def write(self, stage: StageRun, document: dict[str, Any]) -> Path:
        missing = [key for key in self.keys if key not in document]
        if missing:
            raise ValueError(f"{self.writer} stage: {self.path} would lack key(s) {missing}")
        return stage.write_json(self.path, document)


@dataclass(frozen=True)
class Output(Artifact):
    """A file for people, not for other stages (a figure, a Markdown table, a folder): no
    reader beyond its path."""

    def write(self, stage: StageRun, writer: Callable[[Path], Any]) -> Path:
        return stage.write_file(self.path, writer)
