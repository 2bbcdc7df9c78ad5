"""The personas stage end to end (no LLM): outputs, reproducibility, split, manifest."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from persona_testbed.census import (
    PersonaConfig,
    Population,
    build_personas,
    find_persona,
    run_personas,
)
from persona_testbed.census.categories import range_label
from persona_testbed.census.resources import BUNDLED_DICTIONARY
from persona_testbed.census.stage import assign_split
from persona_testbed.contracts import AGE_BRACKETS, OUTPUT_COLUMNS
from persona_testbed.errors import PersonaError
from persona_testbed.run import RunDir

from .conftest import PUMS_2018


def test_same_seed_writes_byte_identical_outputs(tmp_path: Path) -> None:
    config = PersonaConfig(n=800, seed=11, use_llm=False, rake="us-2022")
    run_personas(tmp_path / "a", config)
    run_personas(tmp_path / "b", config)
    for name in ("personas.parquet", "personas.jsonl", "census_reference.parquet"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    other = run_personas(tmp_path / "c", config.model_copy(update={"seed": 12}))
    assert (tmp_path / "c" / "personas.parquet").read_bytes() != (
        tmp_path / "a" / "personas.parquet"
    ).read_bytes()
    assert other.stats["personas"] == 800


def test_outputs_columns_jsonl_and_manifest(tmp_path: Path) -> None:
    result = run_personas(tmp_path / "run", PersonaConfig(n=300, seed=1, use_llm=False))
    personas = pl.read_parquet(result.personas_path)
    assert tuple(personas.columns) == OUTPUT_COLUMNS
    assert personas.get_column("persona_id").n_unique() == 300
    assert personas.get_column("age").dtype == pl.Int64
    assert personas.get_column("weight").min() > 0  # type: ignore[operator]
    jsonl = tmp_path / "run" / "personas.jsonl"
    first = json.loads(jsonl.read_text().splitlines()[0])
    assert tuple(first) == OUTPUT_COLUMNS
    assert pl.read_ndjson(jsonl, schema=personas.schema).equals(personas)
    record = RunDir.open(tmp_path / "run").stage_record("personas")
    assert record is not None and record.seed == 1
    assert record.stats["personas"] == 300
    assert record.stats["train"] + record.stats["test"] == 300
    assert record.stats["sampling"]["method"] == "pps"
    assert record.stats["rake"] == {"target": "none"}
    assert record.stats["weights"]["effective_sample_size_pwgtp"] > 50_000
    assert set(record.outputs) >= {"personas.parquet", "personas.jsonl"}
    persona = find_persona(result.personas_path, "p0007")
    assert persona is not None and persona.age == personas.row(7, named=True)["age"]
    assert find_persona(result.personas_path, "7") == persona


def test_split_is_1000_586_for_the_paper_size_and_proportional_otherwise() -> None:
    paper = assign_split(1586, seed=0)
    assert paper.value_counts().sort("split").rows() == [("test", 586), ("train", 1000)]
    assert assign_split(5000, 0).eq("train").sum() == round(5000 * 1000 / 1586)
    assert not assign_split(1586, 0).equals(assign_split(1586, 1))


def test_minors_are_included_and_the_age_range_is_configurable(population: Population) -> None:
    default = build_personas(PersonaConfig(n=2000, seed=0, use_llm=False), population)
    ages = default.personas.get_column("age").to_numpy()
    assert ages.min() < 5
    assert (ages < 18).mean() == pytest.approx(0.2, abs=0.05)


def test_age_range_and_raked_stats(tmp_path: Path) -> None:
    config = PersonaConfig(n=500, seed=2, use_llm=False, min_age=30, max_age=40, rake="us-2022")
    result = run_personas(tmp_path / "run", config)
    personas = pl.read_parquet(result.personas_path)
    assert personas.get_column("age").is_between(30, 40).all()
    rake = result.stats["rake"]
    assert rake["target"] == "us-2022" and rake["converged"]
    assert "age_bracket=18-24" in rake["dropped_target_categories"]
    weights = result.stats["weights"]
    assert 0 < weights["effective_sample_size_raked"] <= weights["effective_sample_size_pwgtp"]


@pytest.mark.parametrize(
    ("problem", "message"),
    [
        ("missing column", "missing required column AGEP"),
        ("unknown code", "column SEX: code '7' is not in the data dictionary"),
        ("dictionary year", "data dictionary is for 2019 but"),
        ("corrupt zip", "corrupt zip archive"),
        ("bad target", "not 'none', 'us-2022'"),
        ("no one of that age", "no person records aged 120-130"),
    ],
)
def test_each_bad_input_gives_its_error_and_leaves_no_output(
    tmp_path: Path, small_csv: Path, problem: str, message: str
) -> None:
    rows = pl.read_csv(small_csv, infer_schema=False)
    config = PersonaConfig(n=5, use_llm=False, pums=(small_csv,))
    if problem == "missing column":
        rows.drop("AGEP").write_csv(tmp_path / "psam_p50.csv")
        config = config.model_copy(update={"pums": (tmp_path / "psam_p50.csv",)})
    elif problem == "unknown code":
        rows.with_columns(pl.lit("7").alias("SEX")).write_csv(tmp_path / "psam_p50.csv")
        config = config.model_copy(update={"pums": (tmp_path / "psam_p50.csv",)})
    elif problem == "dictionary year":
        other = tmp_path / "PUMS_Data_Dictionary_2019.csv"
        other.write_text(BUNDLED_DICTIONARY.read_text().replace("2018 factor", "2019 factor"))
        config = config.model_copy(update={"dictionary": other})
    elif problem == "corrupt zip":
        (tmp_path / "csv_p50.zip").write_bytes(b"PK\x03\x04 broken")
        config = config.model_copy(update={"pums": (tmp_path / "csv_p50.zip",)})
    elif problem == "bad target":
        config = config.model_copy(update={"rake": str(tmp_path / "nowhere.csv")})
    else:
        config = config.model_copy(update={"min_age": 120, "max_age": 130})
    out = tmp_path / "out"
    with pytest.raises(PersonaError, match=message):
        run_personas(out, config)
    assert not out.exists()


def test_personas_join_back_to_the_raw_state_files(tmp_path: Path) -> None:
    """Acceptance: the source columns find each persona's raw PUMS record, and the sampled
    records reproduce the PWGTP-weighted distributions of SEX, RAC1P and age bracket."""
    zips = sorted(PUMS_2018.glob("csv_p??.zip"))
    if len(zips) != 14:
        pytest.skip("shared ACS 2018 state files not available")
    result = run_personas(tmp_path / "run", PersonaConfig(n=5000, seed=1, use_llm=False))
    personas = pl.read_parquet(result.personas_path)
    raw_frames = []
    for path in zips:
        with zipfile.ZipFile(path) as archive:
            name = next(n for n in archive.namelist() if n.endswith(".csv"))
            raw_frames.append(
                pl.read_csv(
                    archive.read(name),
                    columns=["ST", "SERIALNO", "SPORDER", "PWGTP", "SEX", "RAC1P", "AGEP"],
                    infer_schema=False,
                )
            )
    raw = pl.concat(raw_frames).with_columns(
        pl.col("SPORDER").cast(pl.Int64),
        pl.col("PWGTP").cast(pl.Float64),
        range_label(pl.col("AGEP").cast(pl.Int64), AGE_BRACKETS).alias("bracket"),
    )
    joined = personas.join(
        raw,
        left_on=["source_state", "source_serialno", "source_sporder"],
        right_on=["ST", "SERIALNO", "SPORDER"],
        how="inner",
    )
    assert joined.height == personas.height
    assert (joined.get_column("age") == joined.get_column("AGEP").cast(pl.Int64)).all()
    for column in ("SEX", "RAC1P", "bracket"):
        population = raw.group_by(column).agg(pl.col("PWGTP").sum() / raw["PWGTP"].sum())
        sample = joined.group_by(column).agg((pl.len() / joined.height).alias("s"))
        both = population.join(sample, on=column, how="full", coalesce=True).fill_null(0.0)
        tvd = 0.5 * float(np.abs(both["PWGTP"].to_numpy() - both["s"].to_numpy()).sum())
        assert tvd < 0.02, (column, tvd)
