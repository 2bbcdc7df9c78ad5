"""Run-directory faults (issue 18): one process per run directory, a failed stage leaves no output
that looks complete, a full disk is one line, every JSON written is strict."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from persona_testbed.cli.app import main
from persona_testbed.run import RunDir, write_json_atomic
from persona_testbed.run.lock import RunDirBusyError, run_dir_lock

SRC = str(Path(__file__).resolve().parents[2] / "src")
HOLD_LOCK = (
    "import sys, time; sys.path.insert(0, sys.argv[2]);"
    "from pathlib import Path; from persona_testbed.run.lock import run_dir_lock\n"
    "with run_dir_lock(Path(sys.argv[1])):\n"
    "    print('locked', flush=True); time.sleep(120)"
)


def test_the_run_dir_lock_is_exclusive_reentrant_and_dies_with_its_process(
    tmp_path: Path,
) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(tmp_path), SRC], stdout=subprocess.PIPE
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"locked\n"
        run = RunDir.create(tmp_path)
        with pytest.raises(RunDirBusyError, match=rf"\(pid {holder.pid}\)"), run.stage("x", {}):
            pass
    finally:
        os.kill(holder.pid, signal.SIGKILL)  # no clean-up runs: the kernel drops the lock
        holder.wait()
    with run_dir_lock(tmp_path), run.stage("x", {}):  # re-entrant inside one process
        pass
    assert run.stage_record("x") is not None


def test_a_failed_stage_removes_what_it_wrote(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path / "run")
    with run.stage("personas", {"n": 1}) as stage:
        stage.write_parquet("personas.parquet", pl.DataFrame({"x": [1]}))
    with pytest.raises(OSError), run.stage("personas", {"n": 1}) as stage:
        stage.write_parquet("personas.parquet", pl.DataFrame({"x": [2]}))
        raise OSError(errno.ENOSPC, "No space left on device")
    # The replaced file is gone and so is the record that vouched for the old one.
    assert not (tmp_path / "run" / "personas.parquet").exists()
    assert run.stage_record("personas") is None


def test_disk_full_in_a_stage_is_one_line_and_leaves_no_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import persona_testbed.run.rundir as rundir

    real = rundir.write_with_atomic  # type: ignore[attr-defined]

    def full_disk(final: Path, writer: object) -> None:
        if Path(final).name == "personas.jsonl":  # after personas.parquet was published
            raise OSError(errno.ENOSPC, "No space left on device", str(final))
        real(final, writer)  # type: ignore[arg-type]

    monkeypatch.setattr(rundir, "write_with_atomic", full_disk)
    out = tmp_path / "run"
    assert main(["personas", "--out", str(out), "--n", "5", "--no-llm"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "No space left on device" in err and "personas.jsonl" in err
    assert not (out / "personas.parquet").exists()  # nothing that looks complete
    assert not (out / "manifest.json").exists() or "personas" not in json.loads(
        (out / "manifest.json").read_text()
    ).get("stages", {})


def test_out_that_is_a_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    assert main(["personas", "--out", str(target), "--n", "5", "--no-llm"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "is not a directory" in err


def test_manifest_json_is_strict_json(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path)
    with run.stage("bench", {"n": 1}) as stage:
        stage.record.stats.update(rate=float("nan"), ci=[float("-inf"), 0.5])
    text = (tmp_path / "manifest.json").read_text()

    def refuse(token: str) -> None:
        raise ValueError(f"non-standard JSON token {token}")

    stats = json.loads(text, parse_constant=refuse)["stages"]["bench"]["stats"]
    assert stats == {"rate": None, "ci": [None, 0.5]}
    write_json_atomic(tmp_path / "x.json", {"v": float("nan")})
    assert json.loads((tmp_path / "x.json").read_text(), parse_constant=refuse) == {"v": None}


def test_complete_output_that_is_a_directory_fails_before_any_call(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from persona_testbed.testing.loopback import LoopbackServer

    requests = tmp_path / "requests.jsonl"
    requests.write_text('{"messages": [{"role": "user", "content": "hi"}]}\n')
    with LoopbackServer() as server:
        args = ["complete", "--model", "openai:loopback", "--base-url", server.base_url]
        assert main([*args, "--input", str(requests), "--output", str(tmp_path)]) == 2
        assert server.stats()["total"] == 0  # refused before any model call
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "is a directory" in err


def test_a_failed_prompts_run_leaves_no_manifest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from persona_testbed.testing.loopback import LoopbackServer

    out = tmp_path / "run"
    with LoopbackServer() as server:
        server.add_faults([{"kind": "401", "times": 1000}])  # fails at once, no retries
        args = ["prompts", "--out", str(out), "--demo", "--model", "openai:loopback"]
        assert main([*args, "--base-url", server.base_url, "--no-progress"]) == 2
    assert "HTTP 401" in capsys.readouterr().err
    assert not (out / "manifest.json").exists()
