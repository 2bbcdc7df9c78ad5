"""`persona annotate create-study | export` as a user runs them."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
import pytest
import typer
from typer.testing import CliRunner

from persona_testbed.annotate import LABEL_SCHEMA
from persona_testbed.annotate.db import Database
from persona_testbed.cli.annotate import create_study_command, export_command, register
from persona_testbed.errors import InputError, PersonaError

from .conftest import write_items_jsonl


def cli() -> typer.Typer:
    app = typer.Typer()
    register(app)

    @app.callback()
    def _root() -> None:  # keeps `annotate` a sub-command even with one group
        pass

    return app


def test_create_study_prints_links(tmp_path: Path, run_dir: Path) -> None:
    db = tmp_path / "study.sqlite"
    args = ["annotate", "create-study", "--run", str(run_dir), "--db", str(db)]
    args += ["--personas", "3", "--questions", "4", "--per-persona", "2", "--majority", "2"]
    args += ["--public-url", "https://study.example.org/", "--links-out", str(tmp_path / "l.csv")]
    result = CliRunner().invoke(cli(), args)
    assert result.exit_code == 0, result.output
    links = re.findall(r"https://study\.example\.org/i/\S+", result.output)
    assert len(links) == 6 and len(set(links)) == 6
    assert "study study1: 3 personas x 4 questions, 6 participant slots" in result.output
    assert (
        "https://study.example.org/prolific/study1?PROLIFIC_PID={{%PROLIFIC_PID%}}"
        "&STUDY_ID={{%STUDY_ID%}}&SESSION_ID={{%SESSION_ID%}}" in result.output
    )
    assert re.search(
        r"admin dashboard \(keep secret\): https://\S+/admin/study1\?token=\S+", result.output
    )
    assert pl.read_csv(tmp_path / "l.csv").get_column("url").to_list() == links


def test_create_study_from_items_file_and_export(tmp_path: Path) -> None:
    items = write_items_jsonl(tmp_path / "items.jsonl", personas=2, questions=2)
    db = tmp_path / "study.sqlite"
    app = cli()
    args = ["annotate", "create-study", "--items", str(items), "--db", str(db)]
    args += ["--personas", "2", "--questions", "2", "--per-persona", "1", "--majority", "1"]
    assert CliRunner().invoke(app, args).exit_code == 0
    out = tmp_path / "labels.parquet"
    export = ["annotate", "export", "--db", str(db), "--out", str(out)]
    result = CliRunner().invoke(app, [*export, "--majority-out", str(tmp_path / "m.csv")])
    assert result.exit_code == 0, result.output
    assert "study study1: 0 answers from 0 participants" in result.output
    assert pl.read_parquet(out).columns == list(LABEL_SCHEMA)
    assert (tmp_path / "m.csv").exists()


def test_command_errors_are_persona_errors(tmp_path: Path, run_dir: Path) -> None:
    with pytest.raises(InputError, match="give exactly one of --run DIR or --items FILE"):
        create_study_command(db=str(tmp_path / "x.sqlite"))
    with pytest.raises(InputError, match="--study-id must be letters"):
        create_study_command(db=str(tmp_path / "x.sqlite"), run=run_dir, study_id="../x")
    with pytest.raises(PersonaError, match=r"folder .* does not exist"):
        create_study_command(db=str(tmp_path / "no" / "x.sqlite"), run=run_dir)
    with pytest.raises(PersonaError, match="unsupported backend 'mysql'"):
        export_command(db="mysql://u@h/db", out=tmp_path / "o.csv")
    Database.open(str(tmp_path / "empty.sqlite")).close()
    with pytest.raises(PersonaError, match="no study yet"):
        export_command(db=str(tmp_path / "empty.sqlite"), out=tmp_path / "o.csv")
    assert not (tmp_path / "o.csv").exists()
