"""The commands through Typer, as `persona` registers them."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
import typer
from typer.testing import CliRunner

from persona_testbed.cli.census import register
from persona_testbed.contracts import Persona
from persona_testbed.errors import InputError, PersonaError


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def test_acceptance_personas_twice_gives_identical_rows_then_compare_and_show(
    app: typer.Typer, tmp_path: Path
) -> None:
    runner = CliRunner()
    args = ["personas", "--n", "5000", "--no-llm", "--seed", "1", "--rake", "none"]
    first = runner.invoke(app, [*args, "--out", str(tmp_path / "p1")])
    assert first.exit_code == 0, first.output
    assert "wrote 5000 personas (3153 train / 1847 test)" in first.output
    assert "rake target: none" in first.output
    second = runner.invoke(app, [*args, "--out", str(tmp_path / "p2")])
    assert second.exit_code == 0, second.output
    one = (tmp_path / "p1" / "personas.parquet").read_bytes()
    assert one == (tmp_path / "p2" / "personas.parquet").read_bytes()

    compared = runner.invoke(app, ["census-compare", "--run", str(tmp_path / "p1")])
    assert compared.exit_code == 0, compared.output
    for name in (
        "census_compare.csv",
        "census_compare.md",
        "census_compare.png",
        "census_joint.csv",
        "census_joint.png",
    ):
        assert (tmp_path / "p1" / name).is_file()
    assert "controlled by design (not evidence): age vs pums, race vs pums" in compared.output
    assert (
        "pums: mean TVD" in compared.output and "over 21 uncontrolled attributes" in compared.output
    )
    assert "age x education" in compared.output and "iid 95%" in compared.output

    shown = runner.invoke(app, ["show", "p0003", "--run", str(tmp_path / "p1")])
    assert shown.exit_code == 0, shown.output
    row = pl.read_parquet(tmp_path / "p1" / "personas.parquet").row(3, named=True)
    assert shown.output == Persona.from_row(row).to_text() + "\n"
    assert shown.output.startswith(f"age: {row['age']}\nsex: {row['sex']}\n")


def test_raked_run_reports_target_and_effective_sample_size(
    app: typer.Typer, tmp_path: Path
) -> None:
    result = CliRunner().invoke(
        app,
        ["personas", "--out", str(tmp_path / "r"), "--n", "50", "--no-llm", "--rake", "us-2022"],
    )
    assert result.exit_code == 0, result.output
    assert "rake target: us-2022" in result.output
    assert "effective sample size:" in result.output
    # Acceptance (issue 13): the corrected target, its limits, controlled rows, joint table.
    compared = CliRunner().invoke(app, ["census-compare", "--run", str(tmp_path / "r")])
    assert compared.exit_code == 0, compared.output
    out = " ".join(compared.output.split())
    assert "White non-Hispanic (B01001H) / Hispanic (B01001I) / Other non-Hispanic" in out
    assert "target limits: The shipped ACS tables identify only White non-Hispanic" in out
    assert "sum to the published total 333,287,557" in out
    assert "controlled by design (not evidence): age vs raked, age vs target" in out
    assert "raked: mean TVD" in out and "target: mean TVD" not in out
    assert "sex x occupation category" in out and "education x income" in out


def test_user_errors_surface_as_persona_errors_and_write_nothing(
    app: typer.Typer, tmp_path: Path
) -> None:
    runner = CliRunner()
    out = tmp_path / "out"
    missing = runner.invoke(
        app, ["personas", "--out", str(out), "--no-llm", "--pums", str(tmp_path / "x.zip")]
    )
    assert isinstance(missing.exception, InputError)
    assert "x.zip: file not found" in str(missing.exception)
    ages = runner.invoke(
        app, ["personas", "--out", str(out), "--no-llm", "--min-age", "50", "--max-age", "10"]
    )
    assert isinstance(ages.exception, PersonaError)
    assert "--min-age 50 is above --max-age 10" in str(ages.exception)
    model = runner.invoke(app, ["personas", "--out", str(out), "--model", "nonsense"])
    assert isinstance(model.exception, PersonaError)
    assert not out.exists()
    unknown = runner.invoke(app, ["show", "p9999", "--run", str(tmp_path)])
    assert isinstance(unknown.exception, InputError)
