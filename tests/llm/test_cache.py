from __future__ import annotations

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
