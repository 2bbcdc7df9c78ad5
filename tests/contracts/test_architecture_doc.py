"""docs/architecture.md shows the artifact contract exactly as the code defines it."""

from __future__ import annotations

from persona_testbed.contracts import ARTIFACTS
from persona_testbed.contracts.table import BEGIN, END, markdown_table
from tests.conftest import REPO_ROOT

DOC = REPO_ROOT / "docs" / "architecture.md"


def test_the_doc_table_is_the_contract() -> None:
    text = DOC.read_text("utf-8")
    shown = text[text.index(BEGIN) : text.index(END) + len(END)]
    assert shown == markdown_table(), (
        "docs/architecture.md is out of date: run scripts/architecture_table.py"
    )


def test_the_table_has_a_row_per_artifact() -> None:
    rows = markdown_table().splitlines()[3:-1]
    assert [row.split(" | ")[0].strip("| `") for row in rows] == [a.path for a in ARTIFACTS]
