"""Reading study items from a run's preference pairs or from an items file."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from persona_testbed.annotate import read_items_file, read_run_items
from persona_testbed.annotate.sources import stable_item_id
from persona_testbed.contracts import Persona
from persona_testbed.errors import InputError

from .conftest import fake_persona_row, write_items_jsonl


def test_run_items_are_canonical_pairs_with_census_persona_text(run_dir: Path) -> None:
    items = read_run_items(run_dir)
    pairs = pl.read_parquet(run_dir / "preferences.parquet")
    assert items.height == pairs.height
    row = items.filter(pl.col("item_id") == "pair-003-04").row(0, named=True)
    assert row["question"] == "Question 4 for persona 3?"
    assert row["answer_a"] == "Personalised answer 4 for persona 3."  # y_w, `chosen`
    assert row["answer_b"] == "Base answer 4."  # y_l, `rejected`
    assert row["persona_text"] == Persona.from_row(fake_persona_row(3)).to_text()
    assert "defining quirks: Collects stamps from country 3" in row["persona_text"]


def test_run_items_fall_back_to_persona_text_and_filter_split(run_dir: Path) -> None:
    (run_dir / "personas.parquet").unlink()
    items = read_run_items(run_dir, split="test_seen")
    assert set(items.get_column("persona_text")) >= {"fallback text for persona 0"}
    assert items.height == sum(count // 2 for count in [5, 6, 5, 7, 5, 2])


def test_run_without_preferences_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"preferences\.parquet: preference pairs not found"):
        read_run_items(tmp_path)


def test_preferences_missing_column_is_named(tmp_path: Path) -> None:
    pl.DataFrame({"pair_id": ["x"], "persona_id": ["p"], "prompt": ["q?"]}).write_parquet(
        tmp_path / "preferences.parquet"
    )
    with pytest.raises(InputError, match=r"missing column\(s\) 'chosen', 'rejected'"):
        read_run_items(tmp_path)


def test_items_jsonl_gets_stable_ids(tmp_path: Path) -> None:
    path = write_items_jsonl(tmp_path / "items.jsonl", personas=2, questions=3)
    first = read_items_file(path)
    again = read_items_file(path)
    assert first.height == 6
    assert first.get_column("item_id").n_unique() == 6
    assert first.get_column("item_id").to_list() == again.get_column("item_id").to_list()
    row = first.row(0, named=True)
    assert row["item_id"] == stable_item_id(
        row["persona_id"], row["question"], row["answer_a"], row["answer_b"]
    )


def test_items_csv_keeps_given_ids(tmp_path: Path) -> None:
    path = tmp_path / "items.csv"
    pl.DataFrame(
        {
            "persona_id": ["p1", "p1"],
            "persona_text": ["age: 40", "age: 40"],
            "item_id": ["i-1", ""],
            "question": ["Why?", "How?"],
            "answer_a": ["because", "like this"],
            "answer_b": ["no idea", "like that"],
        }
    ).write_csv(path)
    items = read_items_file(path)
    assert items.get_column("item_id")[0] == "i-1"
    assert items.get_column("item_id")[1].startswith("item-")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"question": ""}, r"items\.jsonl: row 2: empty 'question'"),
        ({"persona_text": "something else"}, r"row 2: persona_text of persona 'p0' differs"),
        ({"item_id": "same"}, r"row 2: item_id 'same' is used more than once"),
    ],
)
def test_bad_items_rows_are_named(tmp_path: Path, change: dict[str, str], message: str) -> None:
    rows = [
        {
            "persona_id": "p0",
            "persona_text": "age: 1",
            "question": f"q{i}",
            "answer_a": "a",
            "answer_b": "b",
            "item_id": "same" if "item_id" in change else f"id{i}",
        }
        for i in range(2)
    ]
    rows[1].update(change)
    path = tmp_path / "items.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    with pytest.raises(InputError, match=message):
        read_items_file(path)


def test_items_file_missing_column_and_type(tmp_path: Path) -> None:
    path = tmp_path / "items.csv"
    path.write_text("persona_id,question\np,q\n")
    with pytest.raises(InputError, match=r"items\.csv: missing column\(s\) 'persona_text'"):
        read_items_file(path)
    with pytest.raises(InputError, match=r"unsupported file type '\.txt'"):
        read_items_file(path.rename(tmp_path / "items.txt"))
