"""SIGKILL a `persona complete` run midway, resume it, and count requests server-side."""

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

N_REQUESTS = 60
CONCURRENCY = 4


def completed_prompts(cache: Path) -> set[str]:
    if not cache.exists():
        return set()
    db = sqlite3.connect(f"file:{cache}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT request FROM responses").fetchall()
    except sqlite3.OperationalError:  # table not created yet
        return set()
    finally:
        db.close()
    return {json.loads(r[0])["messages"][-1]["content"] for r in rows}


def persona_complete(server: LoopbackServer, tmp_path: Path) -> subprocess.Popen[bytes]:
    command = [
        sys.executable, "-m", "persona_testbed", "complete",
        "--model", "openai:loopback", "--base-url", server.base_url,
        "--input", str(tmp_path / "requests.jsonl"), "--output", str(tmp_path / "out.jsonl"),
        "--cache", str(tmp_path / "cache.sqlite"), "--concurrency", str(CONCURRENCY),
        "--no-progress",
    ]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_killed_run_resumes_without_resending_completed_requests(tmp_path: Path) -> None:
    prompts = [f"prompt number {i}" for i in range(N_REQUESTS)]
    with open(tmp_path / "requests.jsonl", "w") as handle:
        for i, prompt in enumerate(prompts):
            line = {"custom_id": f"r{i}", "messages": [{"role": "user", "content": prompt}]}
            handle.write(json.dumps(line) + "\n")
    cache = tmp_path / "cache.sqlite"

    with LoopbackServer(latency=0.1) as server:
        first = persona_complete(server, tmp_path)
        deadline = time.monotonic() + 60
        while len(completed_prompts(cache)) < 12:
            assert first.poll() is None, first.stderr.read() if first.stderr else ""
            assert time.monotonic() < deadline, "the run made no progress"
            time.sleep(0.02)
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
        done_before_kill = completed_prompts(cache)
        assert 12 <= len(done_before_kill) < N_REQUESTS
        assert not (tmp_path / "out.jsonl").exists()  # no partial output that looks complete

        second = persona_complete(server, tmp_path)
        _, stderr = second.communicate(timeout=120)
        assert second.returncode == 0, stderr.decode()
        by_prompt = server.stats()["by_prompt"]

    results = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    # Every request has exactly one result, in input order.
    assert [r["index"] for r in results] == list(range(N_REQUESTS))
    assert [r["custom_id"] for r in results] == [f"r{i}" for i in range(N_REQUESTS)]
    assert [r["text"] for r in results] == [f"echo: {p}" for p in prompts]
    # No request completed before the kill reached the server again.
    assert all(by_prompt[p] == 1 for p in done_before_kill)
    # Only requests in flight at the kill may have been sent twice.
    assert sum(by_prompt.values()) <= N_REQUESTS + CONCURRENCY
    assert set(by_prompt) == set(prompts)
