"""Fixtures for the census tests: the bundled population, the shared real files, small inputs."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from persona_testbed.census.resources import BUNDLED_SAMPLE
from persona_testbed.census.stage import PersonaConfig, Population, load_population

# Real ACS files for development live next to the repository; tests using them skip without.
SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
PUMS_2018 = SHARED / "data" / "pums" / "2018"
SHARED_DICTIONARY = PUMS_2018 / "PUMS_Data_Dictionary_2018.csv"


def shared_file(name: str) -> Path:
    path = PUMS_2018 / name
    if not path.is_file():
        pytest.skip(f"shared ACS file {path} not available")
    return path


@pytest.fixture(scope="session")
def population() -> Population:
    """The bundled 14-state pool, decoded, PWGTP weights (loaded once per session)."""
    return load_population(PersonaConfig(use_llm=False))


@pytest.fixture(scope="session")
def bundled_rows() -> pl.DataFrame:
    return pl.read_parquet(BUNDLED_SAMPLE)


def write_person_csv(rows: pl.DataFrame, path: Path) -> Path:
    """Write raw PUMS person rows as a PUMS-style CSV (codes as text)."""
    rows.select(pl.all().cast(pl.String)).write_csv(path)
    return path


@pytest.fixture
def small_csv(tmp_path: Path, bundled_rows: pl.DataFrame) -> Path:
    """Whole households of Vermont from the bundled sample, as a plain psam_p50.csv."""
    vermont = bundled_rows.filter(pl.col("ST") == "50")
    serials = vermont.get_column("SERIALNO").unique(maintain_order=True).head(120)
    rows = vermont.filter(pl.col("SERIALNO").is_in(serials.implode()))
    return write_person_csv(rows, tmp_path / "psam_p50.csv")
