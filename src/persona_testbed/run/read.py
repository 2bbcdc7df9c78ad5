"""Reading a run's Parquet artifacts: a damaged file is a one-line error naming it."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from persona_testbed.errors import InputError


def unreadable(path: Path, exc: BaseException) -> InputError:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return InputError(
        f"{path}: not a readable Parquet file, truncated or damaged ({first}); "
        "re-run the stage that wrote it"
    )


def read_parquet(path: Path, what: str | None = None) -> pl.DataFrame:
    """`path` as a frame; a missing file (when `what` names the artifact) or a damaged one is
    one line naming it."""
    if what is not None and not Path(path).is_file():
        raise InputError(f"{path}: {what} not found (run the stage that makes it first)")
    try:
        return pl.read_parquet(path)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise unreadable(Path(path), exc) from None
