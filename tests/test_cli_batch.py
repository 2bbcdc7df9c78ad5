"""`--execution export` on a stage command, `persona batch import` and `persona batch status`:
a small preferences run goes out wave by wave and ends as the online run does."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from persona_testbed.cli.app import main
from persona_testbed.testing.loopback import LoopbackServer
from tests.llm.test_batch_files import serve_batch
from tests.preferences.helpers import make_run

SMALL = ["--per-persona-train", "2", "--per-persona-test-seen", "1"]
SMALL += ["--per-persona-test-unseen", "1", "--model", "openai:loopback", "--no-progress"]
EXPORTED = "requests of model openai:loopback written to "


def test_preferences_in_waves_of_batch_files_match_the_online_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    online = make_run(tmp_path / "online", personas=2, train=4, heldout=2)
    offline = make_run(tmp_path / "offline", personas=2, train=4, heldout=2)
    cache = tmp_path / "cache.sqlite"
    with LoopbackServer() as server:
        base = ["--base-url", server.base_url, *SMALL]
        online_args = ["preferences", "--run", str(online.path), *base]
        assert main([*online_args, "--cache", str(tmp_path / "online.sqlite")]) == 0
        capsys.readouterr()
        args = ["preferences", "--run", str(offline.path), *base, "--cache", str(cache)]
        args += ["--execution", "export"]
        waves: list[int] = []
        while (code := main(args)) == 2:
            error = capsys.readouterr().err.strip()
            assert error.count("\n") == 0 and EXPORTED in error, error
            batch = Path(error.split(EXPORTED)[1].split(" for a batch run")[0])
            waves.append(len(batch.read_text().splitlines()))
            output = serve_batch(server, batch)
            assert main(["batch", "import", str(output), "--cache", str(cache)]) == 0
            assert f"{waves[-1]} imported, 0 failed" in capsys.readouterr().out
            assert len(waves) < 10
        assert code == 0
        served = server.stats()["total"]
        assert main([*args[:-2]]) == 0  # online now: everything is cached
        assert server.stats()["total"] == served
    # Four waves, each built on the replies of the one before; the judge's 16 choices last.
    assert waves == [6, 8, 8, 16]
    capsys.readouterr()
    assert main(["batch", "status", "--cache", str(cache)]) == 0
    status = capsys.readouterr().out.splitlines()
    assert len(status) == len(waves) and all(line.endswith(", done") for line in status)
    columns = ["prompt_id", "chosen", "rejected", "judge_p_chosen"]
    expected = pl.read_parquet(online.file("preferences.parquet")).select(columns)
    assert pl.read_parquet(offline.file("preferences.parquet")).select(columns).equals(expected)


def test_import_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "out.jsonl"
    output.write_text(json.dumps({"custom_id": "k", "error": "x"}) + "\nnot json\n")
    assert main(["batch", "import", str(output), "--cache", str(tmp_path / "c.sqlite")]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: {output}:2: not an OpenAI Batch output line: not JSON"
    )
    assert main(["batch", "import", str(tmp_path / "missing.jsonl")]) == 2
    assert "missing.jsonl: cannot read" in capsys.readouterr().err


def test_a_run_under_execution_batch_matches_the_online_run_and_never_resubmits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`persona run` with `llm: {execution: batch}`: every wave goes to OpenAI Batch (the
    loopback's files/batches endpoints, through the openai SDK); `--no-wait` stops after each
    submission, and the re-runs pick the results up without submitting anything twice."""
    pytest.importorskip("openai")
    online = make_run(tmp_path / "online", personas=2, train=4, heldout=2)
    batched = make_run(tmp_path / "batched", personas=2, train=4, heldout=2)
    prefs = (
        "preferences:\n  per_persona_train: 2\n  per_persona_test_seen: 1\n"
        "  per_persona_test_unseen: 1\n"
    )
    with LoopbackServer() as server:
        llm = f"llm:\n  base_url: {server.base_url}\n"
        llm += "  batch: {poll_s: 0.05, max_requests: 5}\n"
        config = tmp_path / "online.yaml"
        config.write_text(
            f"model: openai:loopback\nstages: [preferences]\n{llm}"
            f"  cache: {tmp_path / 'online.sqlite'}\n{prefs}"
        )
        assert main(["run", str(config), "--out", str(online.path), "--no-progress"]) == 0
        chat_requests = server.stats()["total"]
        config = tmp_path / "batch.yaml"
        config.write_text(
            f"model: openai:loopback\nstages: [preferences]\n{llm}"
            f"  cache: {tmp_path / 'batch.sqlite'}\n  execution: batch\n{prefs}"
        )
        run = ["run", str(config), "--out", str(batched.path), "--no-progress"]
        capsys.readouterr()
        stops = 0
        while (code := main([*run, "--no-wait"])) == 2:
            error = capsys.readouterr().err.strip().splitlines()[-1]
            assert "requests submitted to OpenAI Batch" in error, error
            assert error.endswith("run this command again to pick up the results")
            stops += 1
            assert stops < 10
        assert code == 0
        assert stops == 4  # base, critique, revision, judge: four waves
        assert server.stats()["total"] == chat_requests  # nothing went online
        submitted = server.batch_stats()
        assert set(submitted["submitted"].values()) == {1}
        assert len(submitted["batches"]) > stops  # waves split at 5 requests per batch
    ledger = batched.path / "batches" / "provider-batches.jsonl"
    assert ledger.is_file()  # the run directory records every submitted batch
    capsys.readouterr()
    assert main(["batch", "status", str(batched.path / "batches")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(submitted["batches"])
    assert all("(openai, openai:loopback): imported (completed)" in line for line in lines)
    columns = ["prompt_id", "chosen", "rejected", "judge_p_chosen"]
    expected = pl.read_parquet(online.file("preferences.parquet")).select(columns)
    assert pl.read_parquet(batched.file("preferences.parquet")).select(columns).equals(expected)
