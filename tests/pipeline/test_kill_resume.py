"""Kill `persona run` partway through a stage, resume it, and check with the cache counters that
no finished model call is made again."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from persona_testbed.testing.loopback import LoopbackServer

N_PERSONAS = 24


def cached_calls(cache: Path) -> int:
    if not cache.exists():
        return 0
    db = sqlite3.connect(f"file:{cache}?mode=ro", uri=True)
    try:
        return int(db.execute("SELECT COUNT(*) FROM responses").fetchone()[0])
    except sqlite3.OperationalError:
        return 0
    finally:
        db.close()


def test_killed_run_resumes_without_repeating_a_model_call(tmp_path: Path) -> None:
    cache = tmp_path / "cache.sqlite"
    with LoopbackServer(latency=0.05) as server:
        config = tmp_path / "run.yaml"
        config.write_text(
            f"model: openai:loopback\nstages: [personas]\n"
            f"llm:\n  base_url: {server.base_url}\n  concurrency: 2\n  cache: {cache}\n"
            f"personas:\n  n: {N_PERSONAS}\n  rake: us-2022\n"
        )
        command = [sys.executable, "-m", "persona_testbed", "run", str(config)]
        command += ["--out", str(tmp_path / "run"), "--no-progress"]
        first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while cached_calls(cache) < 8:
            assert first.poll() is None, first.communicate()[1].decode()
            assert time.monotonic() < deadline, "no model call finished"
            time.sleep(0.02)
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
        before_kill = cached_calls(cache)
        received_before = server.stats()["total"]
        manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
        assert "personas" not in manifest["stages"]  # the interrupted stage is not complete

        second = subprocess.run(command, capture_output=True, timeout=300)
        assert second.returncode == 0, second.stderr.decode()
        after = cached_calls(cache)
        received = server.stats()["total"] - received_before

    usage = json.loads((tmp_path / "run" / "manifest.json").read_text())["stages"]["personas"][
        "usage"
    ]["openai:loopback"]
    # Every call finished before the kill came from the cache, and only new calls were sent.
    assert usage["cache_hits"] >= before_kill
    assert usage["calls"] == after - before_kill == received
    # A third run skips the finished stage outright.
    third = subprocess.run(command, capture_output=True, timeout=120)
    assert b"skipped" in third.stdout
