"""SIGKILL an `execution: batch` job while its batches are in flight, restart it, and count
server-side: no request is submitted twice and none is lost.

The job (tests/llm/batch_kill_job.py) runs in a child process: three dependent waves of ten
requests, four per batch. The batch servers outlive it (the OpenAI loopback in a process of its
own, the Anthropic loopback in a thread of this one) and count how often each custom_id was
submitted; the test kills the child at points it finds by reading the ledger the child fsyncs
(provider-batches.jsonl) and the server's own state, with the server slowed so each point lasts.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from persona_testbed.llm.providerbatch.ledger import IMPORTED, LEDGER_NAME, Ledger
from persona_testbed.testing.loopback import LoopbackServer
from persona_testbed.testing.loopback_anthropic import AnthropicLoopback
from tests.llm import batch_kill_job
from tests.llm.batch_kill_job import QUESTIONS, client_for, job

pytest.importorskip("openai")
pytest.importorskip("anthropic")

JOB = Path(batch_kill_job.__file__)
SRC = Path(__file__).resolve().parents[2] / "src"
WAVES = 3
BATCHES_PER_WAVE = -(-QUESTIONS // batch_kill_job.BATCH_REQUESTS)  # 10 in 4, 4, 2
REQUESTS = WAVES * QUESTIONS
DEADLINE_S = 30.0


class Job:
    """The batch job as a child process, against one cache and batch folder."""

    def __init__(self, tmp_path: Path, spec: str, base_url: str) -> None:
        self.tmp_path = tmp_path
        self.cache = tmp_path / "cache.sqlite"
        self.out = tmp_path / "out.json"
        self.ledger = tmp_path / "batches" / LEDGER_NAME
        self.command = [sys.executable, str(JOB), spec, base_url, str(self.cache), str(self.out)]
        self.runs = 0

    def start(self) -> subprocess.Popen[bytes]:
        self.runs += 1
        env = dict(os.environ)
        # This checkout's package, whatever the interpreter has installed.
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC), env.get("PYTHONPATH")) if p)
        log = (self.tmp_path / f"run{self.runs}.log").open("wb")
        with log:
            return subprocess.Popen(
                self.command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env
            )

    def log(self) -> str:
        return (self.tmp_path / f"run{self.runs}.log").read_text(errors="replace")

    def records(self) -> list[dict[str, Any]]:
        """The ledger's lines as written (a torn last line left out)."""
        if not self.ledger.is_file():
            return []
        records = []
        for text in self.ledger.read_text().splitlines():
            try:
                records.append(json.loads(text))
            except ValueError:
                continue
        return records

    def submitted(self) -> list[dict[str, Any]]:
        """The batches recorded as accepted by the provider (not the intent lines before)."""
        return [r for r in self.records() if "batch_id" in r and "keys" in r]

    def states(self, state: str) -> int:
        return sum(1 for r in self.records() if r.get("state") == state)

    def kill_when(self, child: subprocess.Popen[bytes], point: Callable[[], bool]) -> None:
        """SIGKILL the child as soon as `point()` holds (polled every 10 ms)."""
        deadline = time.monotonic() + DEADLINE_S
        while not point():
            assert child.poll() is None, f"the job ended before the kill point:\n{self.log()}"
            assert time.monotonic() < deadline, f"the kill point never came:\n{self.log()}"
            time.sleep(0.01)
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=10) == -signal.SIGKILL
        assert not self.out.exists()

    def finish(self) -> list[str]:
        child = self.start()
        assert child.wait(timeout=DEADLINE_S * 2) == 0, self.log()
        answers: list[str] = json.loads(self.out.read_text())
        return answers


def check_exactly_once(run: Job, submitted: dict[str, int], answers: list[str]) -> None:
    """Every request went to the provider in exactly one batch, and every one was answered."""
    assert len(answers) == REQUESTS
    assert len(submitted) == REQUESTS, "a request was never submitted"
    twice = {cid: n for cid, n in submitted.items() if n != 1}
    assert not twice, f"submitted more than once: {twice}"
    batches = Ledger(run.ledger.parent).read()
    assert len(batches) == WAVES * BATCHES_PER_WAVE
    assert all(b.state == IMPORTED for b in batches.values())
    assert sorted(cid for b in batches.values() for cid in b.custom_ids()) == sorted(submitted)


# --------------------------------------------------------------------------- OpenAI Batch


@pytest.fixture
def server() -> Any:
    with LoopbackServer() as running:
        yield running


def online_answers(spec: str, base_url: str, tmp_path: Path) -> list[str]:
    return job(client_for(spec, base_url, tmp_path / "online.sqlite", execution="online"))


def test_openai_batch_job_killed_in_flight_and_during_import_resumes_exactly_once(
    server: LoopbackServer, tmp_path: Path
) -> None:
    expected = online_answers("openai:loopback", server.base_url, tmp_path)
    chat_requests = server.stats()["total"]
    run = Job(tmp_path, "openai:loopback", server.base_url)

    # 1. Wave 1: killed right after its first batch was recorded, while the batch is in flight.
    server.set_batch(delay=1.0)
    run.kill_when(run.start(), lambda: len(run.submitted()) >= 1)
    recorded = list(Ledger(run.ledger.parent).read().values())
    assert 1 <= len(recorded) <= BATCHES_PER_WAVE  # (more than one only on a slow poll here)
    assert all(batch.state != IMPORTED for batch in recorded)
    in_flight = server.batch_stats()["batches"]
    assert all(in_flight[batch.batch_id]["status"] == "in_progress" for batch in recorded)

    # 2. Wave 2: the restart polls and imports wave 1; killed once wave 2's first batch is in
    # flight (the first three batches are wave 1's).
    run.kill_when(run.start(), lambda: len(run.submitted()) > BATCHES_PER_WAVE)
    assert run.states(IMPORTED) == BATCHES_PER_WAVE

    # 3. Killed while importing: the batch ended (so recorded) and its results are downloading.
    server.set_batch(delay=0.3, content_delay=10.0)
    ended = run.states("ended")
    run.kill_when(run.start(), lambda: run.states("ended") > ended)
    assert run.states(IMPORTED) == BATCHES_PER_WAVE  # nothing of wave 2 was imported

    # 4. The last restart ends the job.
    server.set_batch(delay=0.1)
    answers = run.finish()
    assert answers == expected
    check_exactly_once(run, server.batch_stats()["submitted"], answers)
    assert server.stats()["total"] == chat_requests  # nothing was asked online
    assert run.runs == 4


def test_openai_batch_job_killed_before_the_ledger_records_an_accepted_batch_adopts_it(
    server: LoopbackServer, tmp_path: Path
) -> None:
    """The provider accepted the batch, the reply is on its way, the run dies before writing
    the ledger line: the restart finds the batch at the provider instead of submitting again."""
    expected = online_answers("openai:loopback", server.base_url, tmp_path)
    run = Job(tmp_path, "openai:loopback", server.base_url)
    server.set_batch(delay=0.5, create_delay=10.0)
    run.kill_when(run.start(), lambda: len(server.batch_stats()["batches"]) >= 1)
    assert run.submitted() == []  # accepted by the provider, not yet in the ledger
    [intent] = [r for r in run.records() if "submitting" in r]
    server.set_batch(delay=0.1)
    answers = run.finish()
    assert answers == expected
    check_exactly_once(run, server.batch_stats()["submitted"], answers)
    assert "submitted by a run that stopped before recording it" in run.log()
    adopted = [
        b for b in Ledger(run.ledger.parent).read().values() if b.label == intent["submitting"]
    ]
    assert [b.keys for b in adopted] == [intent["keys"]]


# --------------------------------------------------------------------------- Anthropic


def test_anthropic_batch_job_killed_in_flight_resumes_exactly_once(tmp_path: Path) -> None:
    """Killed once each of the first two waves is submitted and in flight. Not while a batch
    is being created: a Message Batch has no metadata to find it by, so one the provider accepted
    just before the kill goes out again (docs/scale.md)."""
    spec = "anthropic:claude-sonnet-4-5"
    with AnthropicLoopback() as server:
        expected = online_answers(spec, server.base_url, tmp_path)
        run = Job(tmp_path, spec, server.base_url)
        server.set_batch(delay=1.0)
        for wave in (1, 2):
            done = wave * BATCHES_PER_WAVE  # the wave's last batch is recorded: now it polls

            def wave_submitted(done: int = done) -> bool:
                return len(run.submitted()) >= done

            run.kill_when(run.start(), wave_submitted)
            assert len(run.submitted()) == done
            assert run.states(IMPORTED) == done - BATCHES_PER_WAVE
        server.set_batch(delay=0.1)
        answers = run.finish()
        submitted = dict(server.submitted)
    assert answers == expected
    check_exactly_once(run, submitted, answers)
