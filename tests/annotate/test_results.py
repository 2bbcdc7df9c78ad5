"""Majority labels and the labels export (contract 7)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from persona_testbed.annotate import (
    LABEL_SCHEMA,
    labels,
    majority_labels,
    resolve_study,
    write_table,
)
from persona_testbed.errors import InputError, PersonaError

from .conftest import StudyFixture


def votes_frame(votes: dict[str, str]) -> pl.DataFrame:
    rows = []
    for item_id, item_votes in votes.items():
        for index, label in enumerate(item_votes):
            rows.append(
                {
                    "study_id": "s",
                    "annotator": f"a{index}",
                    "annotator_kind": "human",
                    "persona_id": "p",
                    "item_id": item_id,
                    "question": f"q {item_id}",
                    "answer_a": "a",
                    "answer_b": "b",
                    "label": label,
                    "justification": "j",
                    "displayed_order": "AB",
                    "answered_at": "2025-01-01T00:00:00+00:00",
                }
            )
    return pl.DataFrame(rows, schema=LABEL_SCHEMA)


def test_three_of_four_majority() -> None:
    frame = votes_frame({"i1": "AAAB", "i2": "ABAB", "i3": "BBBB", "i4": "AA", "i5": "BABB"})
    result = majority_labels(frame, 3)
    assert dict(result.select("item_id", "label").iter_rows()) == {
        "i1": "A",
        "i3": "B",
        "i5": "B",
    }
    assert result.filter(pl.col("item_id") == "i1").row(0, named=True)["votes_a"] == 3
    assert set(result.get_column("annotator")) == {"human-majority"}
    assert set(result.get_column("annotator_kind")) == {"majority"}


def test_majority_threshold_is_configurable_and_ties_never_win() -> None:
    frame = votes_frame({"i1": "AAB", "i2": "AB", "i3": "AABB"})
    assert majority_labels(frame, 2).get_column("item_id").to_list() == ["i1"]
    assert majority_labels(frame, 1).get_column("item_id").to_list() == ["i1"]
    assert majority_labels(frame, 4).height == 0
    with pytest.raises(InputError, match="must be at least 1"):
        majority_labels(frame, 0)


def test_export_round_trips_through_csv_and_parquet(study: StudyFixture, tmp_path: Path) -> None:
    frame = labels(study.database, resolve_study(study.database, None))
    assert frame.columns == list(LABEL_SCHEMA) and frame.height == 0
    for name in ["labels.csv", "labels.parquet"]:
        write_table(frame, tmp_path / name)
        assert (tmp_path / name).exists()
    with pytest.raises(InputError, match=r"labels\.json: unsupported export type"):
        write_table(frame, tmp_path / "labels.json")
    assert not (tmp_path / "labels.json").exists()


def test_resolve_study_errors(study: StudyFixture, run_dir: Path) -> None:
    with pytest.raises(PersonaError, match="no study 'nope'"):
        resolve_study(study.database, "nope")
    from persona_testbed.annotate import StudyConfig, create_study

    config = StudyConfig(run=run_dir, personas=1, questions=1, per_persona=1, majority=1)
    create_study(study.database, config)
    with pytest.raises(PersonaError, match=r"several studies \(s1, study2\); pass --study"):
        resolve_study(study.database, None)
