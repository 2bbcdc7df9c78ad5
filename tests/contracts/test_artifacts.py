"""Every artifact's reader fails with one line naming the file; writers keep the contract."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from persona_testbed.contracts import (
    ARTIFACTS,
    ATTRIBUTES,
    PERSONAS,
    PREFERENCES,
    PROMPTS,
    VERIFICATION,
    Document,
    Output,
    Table,
    artifact_at,
    persona_texts,
    preference_items,
)
from persona_testbed.errors import InputError, PersonaError
from persona_testbed.run import RunDir

TABLES = [artifact for artifact in ARTIFACTS if isinstance(artifact, Table)]
DOCUMENTS = [artifact for artifact in ARTIFACTS if isinstance(artifact, Document)]


def _full_frame(table: Table) -> pl.DataFrame:
    """One row that keeps `table`'s contract (required and optional columns)."""
    values = {"text": "x", "integer": 1, "number": 0.5, "boolean": True, "any": "x"}
    row = {c.name: values[c.type.value] for c in (*table.columns, *table.optional)}
    if table is PERSONAS:
        row.update({name: None for name in ATTRIBUTES} | {"age": 30})
    return pl.DataFrame([row])


def _write(table: Table, run: Path, frame: pl.DataFrame) -> Path:
    path = table.file(run)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".csv":
        frame.write_csv(path)
    elif path.suffix == ".jsonl":
        frame.write_ndjson(path)
    else:
        frame.write_parquet(path)
    return path


def _one_line(error: pytest.ExceptionInfo[PersonaError]) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


def test_every_path_is_spelled_once_and_found_by_path() -> None:
    paths = [artifact.path for artifact in ARTIFACTS]
    assert len(paths) == len(set(paths))
    for artifact in ARTIFACTS:
        assert artifact_at(artifact.path) is artifact
    assert artifact_at("preferences_hf/") is artifact_at("preferences_hf")
    assert artifact_at("nothing.parquet") is None


@pytest.mark.parametrize("table", TABLES, ids=lambda t: t.path)
def test_table_reader_names_a_missing_file(table: Table, tmp_path: Path) -> None:
    with pytest.raises(InputError) as error:
        table.read(tmp_path)
    message = _one_line(error)
    assert message.startswith(f"{tmp_path / table.path}: {table.what} not found")
    assert f"`{table.command}`" in message


@pytest.mark.parametrize("table", [t for t in TABLES if t.columns], ids=lambda t: t.path)
def test_table_reader_names_a_missing_column(table: Table, tmp_path: Path) -> None:
    frame = _full_frame(table)
    assert table.read(_run(tmp_path, table, frame)).height == 1  # the full frame keeps it
    dropped = table.columns[0].name
    path = _write(table, tmp_path, frame.drop(dropped))
    with pytest.raises(InputError) as error:
        table.read(tmp_path)
    assert _one_line(error) == f"{path}: missing column(s) '{dropped}'"


def _run(root: Path, table: Table, frame: pl.DataFrame) -> Path:
    run = root / "good"
    _write(table, run, frame)
    return run


@pytest.mark.parametrize(
    "table", [t for t in TABLES if t.path.endswith(".parquet")], ids=lambda t: t.path
)
def test_table_reader_names_a_damaged_parquet_file(table: Table, tmp_path: Path) -> None:
    path = _write(table, tmp_path, _full_frame(table))
    path.write_bytes(path.read_bytes()[:20])  # truncated
    with pytest.raises(InputError) as error:
        table.read(tmp_path)
    message = _one_line(error)
    assert message.startswith(f"{path}: not a readable Parquet file")


def test_table_reader_names_a_column_of_the_wrong_type(tmp_path: Path) -> None:
    frame = _full_frame(PROMPTS).with_columns(pl.lit("yes").alias("kept"))
    path = _write(PROMPTS, tmp_path, frame)
    with pytest.raises(InputError) as error:
        PROMPTS.read(tmp_path)
    assert _one_line(error) == f"{path}: column 'kept' holds String, not boolean"
    # A column without any value has no type to check (a CSV reads it as text).
    _write(PROMPTS, tmp_path, frame.with_columns(pl.lit(None, dtype=pl.String).alias("kept")))
    assert PROMPTS.read(tmp_path).height == 1


def test_personas_need_an_attribute_column(tmp_path: Path) -> None:
    path = _write(PERSONAS, tmp_path, pl.DataFrame({"persona_id": ["p1"], "split": ["test"]}))
    with pytest.raises(InputError) as error:
        PERSONAS.read(tmp_path)
    assert _one_line(error).startswith(f"{path}: none of the 33 persona attribute columns")


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda d: d.path)
def test_document_reader_failure_modes(document: Document, tmp_path: Path) -> None:
    path = document.file(tmp_path)
    with pytest.raises(InputError) as error:
        document.read(tmp_path)
    assert _one_line(error).startswith(f"{path}: {document.what} not found")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{truncated")
    with pytest.raises(InputError) as error:
        document.read(tmp_path)
    assert _one_line(error).startswith(f"{path}: not readable JSON")
    path.write_text(json.dumps(dict.fromkeys(document.keys, 1)))
    assert document.read(tmp_path) == dict.fromkeys(document.keys, 1)
    if document.keys:
        path.write_text(json.dumps(dict.fromkeys(document.keys[1:], 1)))
        with pytest.raises(InputError) as error:
            document.read(tmp_path)
        assert _one_line(error) == f"{path}: missing key(s) '{document.keys[0]}'"


def test_writers_refuse_a_frame_that_breaks_the_contract(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path / "run")
    broken = _full_frame(PREFERENCES).drop("critique")
    refused = pytest.raises(ValueError, match=r"preferences\.parquet would break its contract")
    with refused, run.stage("preferences", {}) as stage:
        PREFERENCES.write(stage, broken)
    assert not PREFERENCES.exists(run)
    with run.stage("preferences", {}) as stage:
        PREFERENCES.write(stage, _full_frame(PREFERENCES))
        VERIFICATION.write(stage, {"judge_model": "m", "overall": {}, "splits": {}})
    assert PREFERENCES.read(run).height == 1
    assert run.stage_record("preferences").outputs == [PREFERENCES.path, VERIFICATION.path]  # type: ignore[union-attr]


def test_outputs_have_no_columns_and_every_artifact_names_its_writer() -> None:
    for artifact in ARTIFACTS:
        assert artifact.writer and artifact.command.startswith("persona ")
        if isinstance(artifact, Output):
            assert artifact.contract == "-"


def _pairs(**extra: list[str]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "pair_id": ["a", "b", "c"],
            "persona_id": ["p1", "p2", "p1"],
            "prompt": ["Q1?", "Q2?", "Q3?"],
            "chosen": ["yw1", "yw2", ""],  # c: the revision failed
            "rejected": ["yl1", "yl2", "yl3"],
            **extra,
        }
    )


def test_preference_items_are_pairs_as_a_b_items(tmp_path: Path) -> None:
    _write(PREFERENCES, tmp_path, _pairs(persona_text=["card 1", "card 2", "card 1"]))
    items = preference_items(tmp_path)
    assert items.columns == [
        "persona_id", "persona_text", "item_id", "question", "answer_a", "answer_b", "split"
    ]  # fmt: skip
    assert items.rows() == [
        ("p1", "card 1", "a", "Q1?", "yw1", "yl1", None),
        ("p2", "card 2", "b", "Q2?", "yw2", "yl2", None),
    ]
    # The canonical card of personas.parquet wins over the pair's own text.
    _write(PERSONAS, tmp_path, pl.DataFrame({"persona_id": ["p1"], "age": [41]}))
    assert persona_texts(tmp_path) == {"p1": "age: 41"}
    assert preference_items(tmp_path)["persona_text"].to_list() == ["age: 41", "card 2"]


def test_preference_items_name_what_is_wrong(tmp_path: Path) -> None:
    path = _write(PREFERENCES, tmp_path, _pairs())
    with pytest.raises(InputError) as error:
        preference_items(tmp_path)
    assert _one_line(error) == (
        f"{path}: persona 'p1' has no persona_text and is not in {PERSONAS.file(tmp_path)}"
    )
    _write(PREFERENCES, tmp_path, _pairs(persona_text=["c"] * 3))
    with pytest.raises(InputError) as error:
        preference_items(tmp_path, split="test")
    assert _one_line(error).startswith(f"{path}: missing column(s) 'split'")
    _write(PREFERENCES, tmp_path, _pairs(persona_text=["c"] * 3, pair_id=["a", "a", "a"]))
    with pytest.raises(InputError) as error:
        preference_items(tmp_path)
    assert _one_line(error) == f"{path}: pair_id 'a' is not unique"
