from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from persona_testbed.errors import ConfigMismatchError, InputError
from persona_testbed.llm import ModelUsage
from persona_testbed.run import RunDir, write_with_atomic


def test_a_failed_write_leaves_no_file_and_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "out.parquet"

    def explode(tmp: Path) -> None:
        tmp.write_bytes(b"half")
        raise RuntimeError("crash midway")

    with pytest.raises(RuntimeError):
        write_with_atomic(target, explode)
    assert list(tmp_path.iterdir()) == []


def test_stage_records_config_seed_inputs_outputs_and_usage(tmp_path: Path) -> None:
    source = tmp_path / "input.csv"
    source.write_text("a,b\n1,2\n")
    run = RunDir.create(tmp_path / "run")
    with run.stage("personas", {"n": 3}, seed=7, inputs=[source]) as stage:
        stage.write_parquet("personas.parquet", pl.DataFrame({"x": [1, 2, 3]}))
        stage.add_usage({"local:m": ModelUsage(calls=2, prompt_tokens=10)})
        stage.record.stats["kept"] = 3
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    record = manifest["stages"]["personas"]
    assert record["seed"] == 7 and record["config"] == {"n": 3}
    assert record["outputs"] == ["personas.parquet"]
    assert record["usage"]["local:m"]["calls"] == 2 and record["models"] == ["local:m"]
    assert len(record["inputs"][str(source)]) == 64
    assert record["finished_at"] is not None and record["stats"] == {"kept": 3}
    assert "pydantic" in manifest["versions"]
    assert pl.read_parquet(tmp_path / "run" / "personas.parquet")["x"].to_list() == [1, 2, 3]


def test_interrupted_stage_is_not_recorded_as_complete(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path)
    with pytest.raises(KeyboardInterrupt), run.stage("prompts", {"k": 1}):
        raise KeyboardInterrupt
    assert run.stage_record("prompts") is None


def test_different_config_is_refused_unless_forced(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path)
    with run.stage("personas", {"n": 3, "seed": 0}):
        pass
    with run.stage("personas", {"n": 3, "seed": 0}):  # same config: fine
        pass
    with (
        pytest.raises(ConfigMismatchError, match=r"changed: n.*--force"),
        run.stage("personas", {"n": 5, "seed": 0}),
    ):
        pass
    with run.stage("personas", {"n": 5, "seed": 0}, force=True):
        pass
    record = run.stage_record("personas")
    assert record is not None and record.config["n"] == 5


def test_opening_a_directory_that_is_not_a_run_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a run directory"):
        RunDir.open(tmp_path)


def test_published_files_follow_the_umask_not_mkstemps_0600(tmp_path: Path) -> None:
    import os

    from persona_testbed.run import write_text_atomic

    target = tmp_path / "report.md"
    write_text_atomic(target, "x")
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask
