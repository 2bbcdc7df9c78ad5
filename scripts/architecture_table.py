"""Rewrite the artifact table of docs/architecture.md from the contract objects.

    .venv/bin/python scripts/architecture_table.py

The table sits between the markers of `persona_testbed.contracts.table`; everything else in
the doc is left as it is. tests/contracts/test_architecture_doc.py fails when they differ.
"""

from __future__ import annotations

from pathlib import Path

from persona_testbed.contracts.table import BEGIN, END, markdown_table

DOC = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"


def main() -> None:
    text = DOC.read_text("utf-8")
    start, end = text.index(BEGIN), text.index(END) + len(END)
    DOC.write_text(text[:start] + markdown_table() + text[end:], "utf-8")
    print(f"wrote {DOC}")


if __name__ == "__main__":
    main()
