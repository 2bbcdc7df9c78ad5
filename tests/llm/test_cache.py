from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from persona_testbed.llm import ChatResult, ResponseCache


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
