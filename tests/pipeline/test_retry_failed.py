"""`persona run --retry-failed` against the loopback server: rows whose replies came back empty
are asked again, and only they; every good cached call is reused; the outputs become complete."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from persona_testbed.cli.app import main
from persona_testbed.testing.loopback import LoopbackServer
from tests.preferences.helpers import make_run

BAD_PROMPT = "situation number 1 "  # the server's first replies for this question are empty
# The role-play judge's one-token reply (its first-token probabilities decide).
JUDGE_RULE = {"contains": "Answer A:", "reply": "A", "logprobs": {"A": -0.3, "B": -1.4}}


def _run(config: Path, out: Path, *extra: str) -> None:
    assert main(["run", str(config), "--out", str(out), "--no-progress", *extra]) == 0


def test_retry_failed_reasks_only_the_failed_rows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = make_run(tmp_path / "run", personas=3, train=4, heldout=2)
    cache = tmp_path / "cache.sqlite"
    with LoopbackServer() as server:
        config = tmp_path / "run.yaml"
        config.write_text(
            f"model: openai:loopback\nstages: [preferences]\n"
            f"llm:\n  base_url: {server.base_url}\n  concurrency: 2\n  cache: {cache}\n"
            "preferences:\n  per_persona_train: 4\n  per_persona_test_seen: 0\n"
            "  per_persona_test_unseen: 2\n"
        )
        server.set_rules([JUDGE_RULE, {"contains": BAD_PROMPT, "reply": ""}])
        _run(config, run.path)
        first_requests = server.stats()["total"]
        frame = pl.read_parquet(run.file("preferences.parquet"))
        failed = frame.filter(pl.col("generation_failure").is_not_null())
        assert failed.height > 0
        assert (failed["generation_failure"] == "base: empty").all()
        assert failed["prompt"].str.contains(BAD_PROMPT).all()
        manifest = json.loads(run.file("manifest.json").read_text())
        stats = manifest["stages"]["preferences"]["stats"]
        assert stats["generation"]["base"]["failed"] == 1
        assert stats["generation_failures"] == failed.height

        server.set_rules([JUDGE_RULE])  # the model now answers that question
        _run(config, run.path)  # a plain re-run: the stage is done, nothing is asked
        assert "skipped" in capsys.readouterr().out
        assert server.stats()["total"] == first_requests

        before_retry = server.stats()["by_prompt"]
        _run(config, run.path, "--retry-failed")
        asked = server.stats()["total"] - first_requests
        # One fresh base answer for the failed question, then for each of its pairs one
        # critique, one revision and two judge orders; every other call is a cache hit.
        assert asked == 1 + 4 * failed.height
        after_retry = server.stats()["by_prompt"]
        changed = [p for p, n in after_retry.items() if n != before_retry.get(p, 0)]
        assert changed and all(BAD_PROMPT in p for p in changed)

    after = pl.read_parquet(run.file("preferences.parquet"))
    assert after.height == frame.height
    assert after["generation_failure"].is_null().all()
    assert after["judge_p_chosen"].is_not_null().all()
    manifest = json.loads(run.file("manifest.json").read_text())
    stats = manifest["stages"]["preferences"]["stats"]
    assert stats["generation_failures"] == 0
    assert stats["generation"]["base"]["failed"] == 0
    # The good calls of the first run were reused from the cache, not asked again.
    usage = manifest["stages"]["preferences"]["usage"]["openai:loopback"]
    assert usage["calls"] == asked
    assert usage["cache_hits"] > 0


def test_retry_failed_skips_a_stage_without_failures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = make_run(tmp_path / "run", personas=2, train=2, heldout=1)
    with LoopbackServer() as server:
        config = tmp_path / "run.yaml"
        config.write_text(
            f"model: openai:loopback\nstages: [preferences]\n"
            f"llm:\n  base_url: {server.base_url}\n  cache: {tmp_path / 'c.sqlite'}\n"
            "preferences:\n  per_persona_train: 2\n  per_persona_test_seen: 0\n"
            "  per_persona_test_unseen: 1\n"
        )
        server.set_rules([JUDGE_RULE])
        _run(config, run.path)
        before = server.stats()["total"]
        capsys.readouterr()
        _run(config, run.path, "--retry-failed")
        assert "skipped" in capsys.readouterr().out
        assert server.stats()["total"] == before
