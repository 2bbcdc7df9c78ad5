"""Secrets and exports of the annotation app (issue 18): the banner masks the database password,
CSV exports cannot carry spreadsheet formulas, a mistyped --db is an error, a busy port is
reported before the banner."""

from __future__ import annotations

import io
import socket
from pathlib import Path
from types import SimpleNamespace

import polars as pl
import pytest
from typer.testing import CliRunner

from persona_testbed.annotate.db import Database, display_url
from persona_testbed.annotate.results import table_bytes, write_table
from persona_testbed.cli import annotate as commands
from persona_testbed.cli.app import main
from persona_testbed.errors import PersonaError

from .conftest import write_items_jsonl

HOSTILE = ['=HYPERLINK("http://x")', "+1+2", "-2+3", "@SUM(A1)", "\tx", "\rx", "fine", "a=b"]


def test_csv_exports_neutralise_formula_cells(tmp_path: Path) -> None:
    frame = pl.DataFrame({"justification": HOSTILE, "score": list(range(len(HOSTILE)))})
    path = tmp_path / "labels.csv"
    write_table(frame, path)
    for data in (path.read_bytes(), table_bytes(frame, "csv")):
        cells = pl.read_csv(io.BytesIO(data)).get_column("justification").to_list()
        assert cells[:6] == ["'" + text for text in HOSTILE[:6]]
        assert cells[6:] == ["fine", "a=b"]  # ordinary text is untouched
    # Parquet is data, not a spreadsheet: it keeps the text exactly.
    write_table(frame, tmp_path / "labels.parquet")
    assert pl.read_parquet(tmp_path / "labels.parquet").equals(frame)


@pytest.mark.parametrize("command", ["serve", "export"])
def test_a_mistyped_sqlite_db_is_an_error_not_a_new_database(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    command: str,
) -> None:
    import uvicorn

    def must_not_serve(app: object, **options: object) -> None:
        raise AssertionError("served a database that does not exist")

    monkeypatch.setattr(uvicorn, "run", must_not_serve)
    typo = tmp_path / "stduy.sqlite"
    args = ["annotate", command, "--db", str(typo)]
    if command == "export":
        args += ["--out", str(tmp_path / "o.csv")]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "stduy.sqlite: no such file" in err
    assert not typo.exists()


def test_serve_banner_masks_the_database_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import uvicorn

    url = "postgresql+psycopg://study:s3cr3t-pw@db.example.org:5432/persona"
    fake = SimpleNamespace(url=url, display=display_url(url), close=lambda: None)
    monkeypatch.setattr(Database, "open", classmethod(lambda cls, db, create=True: fake))
    monkeypatch.setattr(commands, "create_app", lambda db, **kw: object())
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: None)
    monkeypatch.setattr(commands, "check_port_free", lambda host, port: None)
    assert main(["annotate", "serve", "--db", url, "--port", "8123"]) == 0
    out = capsys.readouterr().out
    assert "serving" in out and "db.example.org" in out
    assert "s3cr3t-pw" not in out and "***" in out


def test_a_busy_port_is_reported_before_the_banner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda app, **options: None)  # never serve for real
    items = write_items_jsonl(tmp_path / "items.jsonl", personas=1, questions=1)
    db = tmp_path / "study.sqlite"
    create = ["annotate", "create-study", "--items", str(items), "--db", str(db)]
    create += ["--personas", "1", "--questions", "1", "--per-persona", "1", "--majority", "1"]
    assert main(create) == 0
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(
            commands.annotate_app, ["serve", "--db", str(db), "--port", str(port)]
        )
    assert result.exit_code != 0
    assert "serving" not in result.output
    assert isinstance(result.exception, PersonaError)
    assert f"cannot serve at 127.0.0.1:{port}" in str(result.exception)
