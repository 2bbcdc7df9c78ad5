from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from persona_testbed.llm import (
    ChatRequest,
    ChatResult,
    ClientSettings,
    LLMClient,
    Message,
    ResponseCache,
)
from persona_testbed.llm.cache import CacheWriteError
from persona_testbed.testing import ScriptedBackend


def test_put_get_roundtrip_and_stats(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path / "c.sqlite")
    assert cache.get("k1") is None
    cache.put("k1", "m1", "{}", ChatResult(text="hi", prompt_tokens=3, completion_tokens=1))
    cache.put("k2", "m2", "{}", ChatResult(text="yo"))
    hit = cache.get("k1")
    assert hit is not None and hit.text == "hi" and hit.cached and hit.prompt_tokens == 3
    stats = cache.stats()
    assert stats.entries == 2 and stats.by_model == {"m1": 1, "m2": 1}
    assert cache.clear("m1") == 1
    assert cache.get("k1") is None and cache.get("k2") is not None
    assert cache.clear() == 1
    cache.close()


def test_cache_uses_wal_and_each_put_is_visible_to_another_connection(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    cache = ResponseCache(path)
    cache.put("k", "m", "{}", ChatResult(text="x"))
    # A second connection (as after a SIGKILL and restart) sees the committed row at once.
    other = sqlite3.connect(path)
    assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert other.execute("SELECT COUNT(*) FROM responses").fetchone()[0] == 1
    other.close()
    cache.close()


def test_corrupt_cache_file_gives_a_clear_error(tmp_path: Path) -> None:
    import pytest

    from persona_testbed.errors import PersonaError

    path = tmp_path / "c.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(PersonaError, match=r"c\.sqlite"):
        ResponseCache(path)


def _rows(path: Path) -> int:
    other = sqlite3.connect(path)
    try:
        return int(other.execute("SELECT COUNT(*) FROM responses").fetchone()[0])
    finally:
        other.close()


def test_writes_in_an_event_loop_commit_together_by_the_next_round(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    cache = ResponseCache(path)

    async def writes() -> list[int]:
        seen = []
        cache.put("a", "m", "{}", ChatResult(text="x"))
        cache.put("b", "m", "{}", ChatResult(text="y"))
        seen.append(_rows(path))  # one open transaction: another connection sees neither yet
        await asyncio.sleep(0)  # the loop's next round commits it
        seen.append(_rows(path))
        cache.put("c", "m", "{}", ChatResult(text="z"))
        cache.flush()  # what the client does before it sends another request
        seen.append(_rows(path))
        return seen

    assert asyncio.run(writes()) == [0, 2, 3]
    cache.put("d", "m", "{}", ChatResult(text="w"))  # no event loop: committed at once
    assert _rows(path) == 4
    assert cache.get("c") is not None
    cache.close()


def test_two_caches_on_one_file_in_one_event_loop_do_not_block_each_other(
    tmp_path: Path,
) -> None:
    path = tmp_path / "c.sqlite"
    first, second = ResponseCache(path), ResponseCache(path)
    first._db.execute("PRAGMA busy_timeout=200")
    second._db.execute("PRAGMA busy_timeout=200")

    async def writes() -> None:
        first.put("a", "m", "{}", ChatResult(text="x"))  # opens first's transaction
        second.put("b", "m", "{}", ChatResult(text="y"))  # commits first's, then writes
        assert first.claim("k") and not second.claim("k")

    asyncio.run(writes())
    first.close()
    second.close()
    assert _rows(path) == 2


class _CommitProbe(ScriptedBackend):
    """At every send, counts the answers another connection sees committed in the cache."""

    def __init__(self, path: Path) -> None:
        super().__init__(lambda request: "ok " + request.messages[-1].content, latency_s=0.001)
        self.path = path
        self.answered = 0
        self.short: list[tuple[int, int]] = []

    async def complete(self, request: ChatRequest) -> ChatResult:
        committed = _rows(self.path)
        if committed < self.answered:
            self.short.append((committed, self.answered))
        result = await super().complete(request)
        self.answered += 1
        return result


def test_every_answer_is_committed_before_the_next_request_goes_out(tmp_path: Path) -> None:
    """Requests wait for the loop round's one shared commit (committed()), never sent ahead of
    an answer that is not yet on disk (a SIGKILL then loses only calls in flight)."""
    path = tmp_path / "c.sqlite"
    probe = _CommitProbe(path)
    client = LLMClient(probe, ClientSettings(cache_path=path, concurrency=8, show_progress=False))
    requests = [client.request([Message(role="user", content=f"q{i}")]) for i in range(120)]
    results = client.complete_batch(requests)
    assert [r.text for r in results] == [f"ok q{i}" for i in range(120)]
    assert probe.short == []
    client.close()
    assert _rows(path) == 120


def test_committed_waits_for_the_rounds_one_commit_and_reports_its_failure(
    tmp_path: Path,
) -> None:
    path = tmp_path / "c.sqlite"
    cache = ResponseCache(path)

    async def waits() -> tuple[int, int]:
        await cache.committed()  # nothing open: returns at once
        cache.put("a", "m", "{}", ChatResult(text="x"))
        cache.put("b", "m", "{}", ChatResult(text="y"))
        before = _rows(path)
        await asyncio.gather(cache.committed(), cache.committed())  # one commit for both
        return before, _rows(path)

    assert asyncio.run(waits()) == (0, 2)

    async def failing() -> None:
        cache.put("c", "m", "{}", ChatResult(text="z"))
        real = cache._db

        class NoCommit:
            """The connection, except that COMMIT fails as on a full disk."""

            in_transaction = True

            def execute(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
                if sql == "COMMIT":
                    raise sqlite3.OperationalError("database or disk is full")
                return real.execute(sql, params)

        cache._db = NoCommit()  # type: ignore[assignment]
        try:
            with pytest.raises(CacheWriteError, match="disk is full"):
                await cache.committed()
        finally:
            cache._db = real

    asyncio.run(failing())
    assert cache.get("c") is None  # rolled back, and the waiter was told
    cache.close()


def test_a_transaction_left_open_by_an_ended_loop_is_committed_not_waited_for(
    tmp_path: Path,
) -> None:
    path = tmp_path / "c.sqlite"
    cache = ResponseCache(path)
    ended = asyncio.new_event_loop()
    # The loop ends before its round runs the scheduled commit (a loop stopped early, or a
    # client driven from another loop): a waiter in the next loop would wait forever.
    ended.call_soon(cache.put, "a", "m", "{}", ChatResult(text="x"))
    ended.call_soon(ended.stop)
    ended.run_forever()
    ended.close()
    assert _rows(path) == 0  # the write's transaction is still open

    async def send() -> None:
        await asyncio.wait_for(cache.committed(), timeout=5)

    asyncio.run(send())
    assert _rows(path) == 1
    cache.close()
