"""A truncated personas.parquet read by `show` or `census-compare` is a one-line error naming
the file (issue 18), and a cache on a full disk is one line too."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from persona_testbed.cli.app import main


@pytest.fixture(scope="module")
def truncated_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("run")
    assert main(["personas", "--out", str(run), "--n", "6", "--no-llm"]) == 0
    personas = run / "personas.parquet"
    data = personas.read_bytes()
    personas.write_bytes(data[: len(data) // 2])  # an interrupted copy
    return run


@pytest.mark.parametrize(
    "args", [["show", "p0000", "--run"], ["census-compare", "--force", "--run"]]
)
def test_a_truncated_personas_parquet_is_one_line(
    truncated_run: Path, capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    assert main([*args, str(truncated_run)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "personas.parquet: not a readable Parquet file" in err


class _FullDisk:
    """A connection whose disk fills up when a response is stored."""

    def __init__(self, real: sqlite3.Connection) -> None:
        self._real = real

    def execute(self, sql: str, params: tuple[object, ...] = ()) -> sqlite3.Cursor:
        if sql.startswith("INSERT OR REPLACE INTO responses"):
            raise sqlite3.OperationalError("database or disk is full")
        return self._real.execute(sql, params)

    def __getattr__(self, name: str) -> object:
        return getattr(self._real, name)


def test_a_cache_on_a_full_disk_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from persona_testbed.testing.loopback import LoopbackServer

    connect = sqlite3.connect
    monkeypatch.setattr(sqlite3, "connect", lambda *a, **k: _FullDisk(connect(*a, **k)))
    requests = tmp_path / "requests.jsonl"
    requests.write_text('{"messages": [{"role": "user", "content": "hi"}]}\n')
    with LoopbackServer() as server:
        args = ["complete", "--model", "openai:loopback", "--base-url", server.base_url]
        args += ["--input", str(requests), "--output", str(tmp_path / "o.jsonl"), "--no-progress"]
        assert main([*args, "--cache", str(tmp_path / "c.sqlite")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "the disk is full" in err and "c.sqlite" in err
    assert not (tmp_path / "o.jsonl").exists()
