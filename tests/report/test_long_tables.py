"""A self-contained report shows every row of a long table, collapsed (issue 18: the population
table stopped after its first rows, hiding the rows against the raking target)."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from persona_testbed.report.html import write_report
from persona_testbed.run import RunDir


def test_a_long_table_is_shown_whole_inside_details(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path / "run")
    rows = pl.DataFrame(
        {"reference": ["target"] * 120, "category": [f"category-{i:03d}" for i in range(120)]}
    )
    short = pl.DataFrame({"reference": ["pums"], "category": ["only-row"]})
    with run.stage("census-compare", {"n": 1}) as stage:
        stage.write_file("census_compare.csv", rows.write_csv)
        stage.write_file("short.csv", short.write_csv)
    html = write_report(run.path).read_text()
    assert all(f"category-{i:03d}" in html for i in range(120))  # the last rows too
    assert "<summary>all 120 rows</summary>" in html
    assert html.count("<details>") == 1  # the one-row table is not collapsed
    assert "more rows in the run directory" not in html
