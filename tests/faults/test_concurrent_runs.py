"""Two processes on one run directory or one response cache (issue 18): the second `persona run`
on a directory fails at once; processes sharing a cache send each request once."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from persona_testbed.testing.loopback import LoopbackServer


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


def test_a_second_run_on_the_same_directory_fails_at_once(tmp_path: Path) -> None:
    cache = tmp_path / "cache.sqlite"
    with LoopbackServer(latency=0.05) as server:
        config = tmp_path / "run.yaml"
        config.write_text(
            "model: openai:loopback\nstages: [personas]\n"
            f"llm:\n  base_url: {server.base_url}\n  concurrency: 2\n  cache: {cache}\n"
            "personas:\n  n: 24\n  rake: us-2022\n"
        )
        command = [sys.executable, "-m", "persona_testbed", "run", str(config)]
        command += ["--out", str(tmp_path / "run"), "--no-progress"]
        first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while cached_calls(cache) < 2:  # the first run is inside its stage, holding the lock
            assert first.poll() is None, first.communicate()[1].decode()
            assert time.monotonic() < deadline, "no model call finished"
            time.sleep(0.02)
        second = subprocess.run(command, capture_output=True, timeout=60)
        assert first.poll() is None, "the first run must still be running for this test to mean it"
        _, err = first.communicate(timeout=300)
        total = server.stats()["total"]
    message = second.stderr.decode().strip()
    assert second.returncode == 2
    assert message.count("\n") == 0
    assert "another persona process is using this run directory" in message
    assert f"(pid {first.pid})" in message
    assert first.returncode == 0, err.decode()
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    usage = manifest["stages"]["personas"]["usage"]["openai:loopback"]
    assert usage["calls"] == total  # every request the server saw came from the first run


def test_two_processes_sharing_a_cache_send_each_request_once(tmp_path: Path) -> None:
    n = 24
    requests = tmp_path / "requests.jsonl"
    lines = [
        {"messages": [{"role": "user", "content": f"q{i}"}], "max_tokens": 4} for i in range(n)
    ]
    requests.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    cache = tmp_path / "shared.sqlite"
    with LoopbackServer(latency=0.2) as server:
        procs = []
        for name in ("a", "b"):
            command = [sys.executable, "-m", "persona_testbed", "complete"]
            command += ["--model", "openai:loopback", "--base-url", server.base_url]
            command += ["--input", str(requests), "--output", str(tmp_path / f"{name}.jsonl")]
            command += ["--cache", str(cache), "--concurrency", "4", "--no-progress"]
            procs.append(subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE))
        for proc in procs:
            _, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err.decode()
        stats = server.stats()
    assert stats["total"] == n
    assert set(stats["by_prompt"].values()) == {1}
    a = [json.loads(line)["text"] for line in (tmp_path / "a.jsonl").read_text().splitlines()]
    b = [json.loads(line)["text"] for line in (tmp_path / "b.jsonl").read_text().splitlines()]
    assert a == b == [f"echo: q{i}" for i in range(n)]


def test_a_claim_left_by_a_killed_process_is_taken_over(tmp_path: Path) -> None:
    """SIGKILL leaves its claim row behind; a later process must not wait on it forever."""
    from persona_testbed.llm.cache import ResponseCache

    cache_path = tmp_path / "c.sqlite"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    db = sqlite3.connect(cache_path)
    ResponseCache(cache_path).close()
    import socket

    db.execute(
        "INSERT INTO claims VALUES ('k', 'gone', ?, ?, ?)",
        (socket.gethostname(), dead.pid, time.time()),
    )
    db.commit()
    db.close()
    cache = ResponseCache(cache_path)
    assert cache.claim("k")
    other = ResponseCache(cache_path)
    assert not other.claim("k")  # held by a live owner now
    cache.release("k")
    assert other.claim("k")
    cache.close()
    other.close()
