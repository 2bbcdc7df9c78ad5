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


def read_parquet(path: Path) -> pl.DataFrame:
    try:
        return pl.read_parquet(path)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise unreadable(Path(path), exc) from None
