"""The export feeds the agreement stage's reader unchanged, and both count majorities alike."""

from __future__ import annotations

import importlib
from pathlib import Path

import polars as pl
import pytest
from fastapi.testclient import TestClient

from persona_testbed.annotate import create_app, labels, majority_labels, write_table

from .conftest import StudyFixture, csrf_of, path_of


def fill(study: StudyFixture) -> pl.DataFrame:
    """Every participant answers every question, with a varying pattern of choices."""
    app = create_app(study.database)
    for index, invitation in enumerate(study.created.invitations):
        with TestClient(app) as client:
            page = client.get(path_of(invitation.url)).text
            page = client.post("/study/start", data={"csrf_token": csrf_of(page)}).text
            for position in range(3):
                form = {"csrf_token": csrf_of(page), "position": str(position)}
                form |= {"choice": "1" if (index + position) % 3 else "2"}
                page = client.post("/study/answer", data={**form, "justification": "r" * 12}).text
    return labels(study.database, study.database_study())


def test_export_reads_in_the_agreement_stage(study: StudyFixture, tmp_path: Path) -> None:
    try:
        agreement = importlib.import_module("persona_testbed.agreement.labels")
    except ImportError:
        pytest.skip("the agreement stage is not installed in this tree")
    if not hasattr(agreement, "read_labels") or not hasattr(agreement, "majority_vote"):
        pytest.skip("the agreement stage has no read_labels/majority_vote yet")
    exported = fill(study)
    assert exported.height == 12
    for name in ["labels.csv", "labels.parquet"]:
        write_table(exported, tmp_path / name)
        read = agreement.read_labels(tmp_path / name)
        assert read.height == exported.height
        assert (
            read.select("persona_id", "item_id", "annotator", "label")
            .sort("annotator", "item_id")
            .equals(
                exported.select("persona_id", "item_id", "annotator", "label").sort(
                    "annotator", "item_id"
                )
            )
        )
    theirs = agreement.majority_vote(read, 2).labels.select("persona_id", "item_id", "label")
    ours = majority_labels(exported, 2).select("persona_id", "item_id", "label")
    assert ours.height > 0
    assert ours.sort("item_id").equals(theirs.sort("item_id"))
