"""SIGKILL `persona preferences` midway, resume it, and count requests server-side."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import polars as pl

from persona_testbed.llm import ClientSettings, LLMClient
from persona_testbed.preferences import PreferencesConfig, run_preferences_stage
from persona_testbed.testing.loopback import LoopbackServer
from tests.conftest import REPO_ROOT
from tests.preferences.helpers import make_run

CONCURRENCY = 4
SIZES = {"per_persona_train": 3, "per_persona_test_seen": 1, "per_persona_test_unseen": 1}


def cached_prompts(cache: Path) -> list[str]:
    """The last user message of every cached request (what the server counts by)."""
    if not cache.exists():
        return []
    db = sqlite3.connect(f"file:{cache}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT request FROM responses").fetchall()
    except sqlite3.OperationalError:  # table not created yet
        return []
    finally:
        db.close()
    return [json.loads(r[0])["messages"][-1]["content"] for r in rows]


def start(server: LoopbackServer, run: Path, cache: Path) -> subprocess.Popen[bytes]:
    command = [
        sys.executable, "-m", "tests.preferences.cli_app", "preferences", "--run", str(run),
        "--per-persona-train", "3", "--per-persona-test-seen", "1",
        "--per-persona-test-unseen", "1", "--model", "openai:loopback",
        "--base-url", server.base_url, "--cache", str(cache),
        "--concurrency", str(CONCURRENCY), "--no-progress",
    ]  # fmt: skip
    return subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_killed_run_resumes_without_repeating_completed_calls(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", personas=4, train=8, heldout=3)
    cache = tmp_path / "cache.sqlite"
    with LoopbackServer(latency=0.05) as server:
        first = start(server, run.path, cache)
        deadline = time.monotonic() + 60
        while len(cached_prompts(cache)) < 30:  # into the critique / revision steps
            assert first.poll() is None, first.stderr.read() if first.stderr else ""
            assert time.monotonic() < deadline, "the run made no progress"
            time.sleep(0.02)
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
        done_before_kill = cached_prompts(cache)
        assert not run.file("preferences.parquet").exists()
        assert run.stage_record("preferences") is None

        second = start(server, run.path, cache)
        _, stderr = second.communicate(timeout=120)
        assert second.returncode == 0, stderr.decode()
        by_prompt = server.stats()["by_prompt"]
        resumed = pl.read_parquet(run.file("preferences.parquet"))

        # The same job uninterrupted, on a fresh cache, for the expected requests and output.
        server.reset()
        clean_run = make_run(tmp_path / "clean", personas=4, train=8, heldout=3)
        settings = ClientSettings(
            cache_path=tmp_path / "clean.sqlite", base_url=server.base_url, show_progress=False
        )
        client = LLMClient.from_spec("openai:loopback", settings)
        clean = run_preferences_stage(clean_run, PreferencesConfig(**SIZES), client=client)
        client.close()
        expected = server.stats()["by_prompt"]

    assert len(resumed) == 20
    assert resumed.equals(pl.read_parquet(clean.preferences_path))
    # Nothing that completed before the kill reached the server again.
    assert all(by_prompt[p] == 1 for p in done_before_kill)
    # Only requests in flight at the kill may have been sent twice.
    assert set(by_prompt) == set(expected)
    assert sum(by_prompt.values()) <= sum(expected.values()) + CONCURRENCY
