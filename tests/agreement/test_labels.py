"""Reading human labels (CSV/Parquet, the annotation app's schema) and majority votes."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from persona_testbed.agreement.labels import MAJORITY_ANNOTATOR, majority_vote, read_labels
from persona_testbed.errors import InputError


def _labels(rows: list[tuple[str, str, str, str]]) -> pl.DataFrame:
    return pl.DataFrame(
        rows, schema=["annotator", "persona_id", "item_id", "label"], orient="row"
    ).with_columns(pl.lit("human").alias("annotator_kind"))


def test_read_csv_normalises_labels_and_defaults_kind(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text("annotator,persona_id,item_id,label,justification\nh1,p1,i1, a ,why\n")
    frame = read_labels(path)
    assert frame["label"].to_list() == ["A"]
    assert frame["annotator_kind"].to_list() == ["human"]


def test_read_parquet(tmp_path: Path) -> None:
    path = tmp_path / "labels.parquet"
    _labels([("h1", "p1", "i1", "B")]).write_parquet(path)
    assert read_labels(path)["label"].to_list() == ["B"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("annotator,persona_id,label\nh1,p1,A\n", "missing column(s) 'item_id'"),
        (
            "annotator,persona_id,item_id,label\nh1,p1,i1,A\nh1,p1,i2,maybe\n",
            "row 2: label 'MAYBE'",
        ),
        ("annotator,persona_id,item_id,label\nh1,p1,,A\n", "row 1: empty 'item_id'"),
        (
            "annotator,persona_id,item_id,label\nh1,p1,i1,A\nh1,p1,i1,B\n",
            "row 2: annotator 'h1' labels item 'i1' of persona 'p1' more than once",
        ),
    ],
)
def test_bad_labels_name_the_row(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "labels.csv"
    path.write_text(body)
    with pytest.raises(InputError) as error:
        read_labels(path)
    assert str(error.value).startswith(f"{path}: ")
    assert message in str(error.value)


def test_missing_and_unsupported_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="labels file not found"):
        read_labels(tmp_path / "nope.csv")
    other = tmp_path / "labels.xlsx"
    other.write_text("x")
    with pytest.raises(InputError, match=r"unsupported labels file type '\.xlsx'"):
        read_labels(other)


def test_majority_three_of_four() -> None:
    rows = [
        *[(f"h{i}", "p1", "i1", "A") for i in range(3)],
        ("h3", "p1", "i1", "B"),  # 3 of 4 say A
        *[(f"h{i}", "p1", "i2", "AB"[i % 2]) for i in range(4)],  # 2-2 tie
        *[(f"h{i}", "p1", "i3", "B") for i in range(2)],  # only 2 votes
    ]
    result = majority_vote(_labels(rows), threshold=3)
    assert result.items == 3 and result.items_with_majority == 1
    decided = result.labels.row(0, named=True)
    assert decided["annotator"] == MAJORITY_ANNOTATOR
    assert (decided["item_id"], decided["label"], decided["votes_a"]) == ("i1", "A", 3)


def test_default_majority_is_more_than_half() -> None:
    rows = [
        ("h0", "p1", "i1", "B"),
        ("h1", "p1", "i1", "B"),
        ("h2", "p1", "i1", "A"),
        ("h0", "p1", "i2", "A"),
        ("h1", "p1", "i2", "B"),
    ]
    result = majority_vote(_labels(rows))
    assert result.labels.select("item_id", "label").rows() == [("i1", "B")]
    with pytest.raises(InputError, match="must be at least 1"):
        majority_vote(_labels(rows), threshold=0)


def test_majority_carries_per_item_columns() -> None:
    rows = [("h0", "p1", "i1", "B"), ("h1", "p1", "i1", "B"), ("h0", "p1", "i2", "A")]
    labels = _labels(rows).with_columns(("Q " + pl.col("item_id")).alias("question"))
    result = majority_vote(labels, threshold=1, carry=["question"])
    assert result.labels.columns[:5] == [
        "annotator",
        "annotator_kind",
        "persona_id",
        "item_id",
        "question",
    ]
    assert result.labels.select("item_id", "question", "label").rows() == [
        ("i1", "Q i1", "B"),
        ("i2", "Q i2", "A"),
    ]
