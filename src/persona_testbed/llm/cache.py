"""Response cache: SQLite in WAL mode, keyed by a hash of the canonical request.

Each completed call is committed on its own, so a run killed with SIGKILL loses no completed call
(WAL pages written by a committed transaction survive the death of the process).
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

from pydantic import BaseModel

from persona_testbed.errors import PersonaError
from persona_testbed.llm.types import ChatResult

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    request TEXT NOT NULL,
    response TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS responses_model ON responses(model);
"""


def default_cache_path() -> Path:
    """`$PERSONA_CACHE` if set, else the user's cache directory."""
    explicit = os.environ.get("PERSONA_CACHE")
    if explicit:
        return Path(explicit)
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "persona-testbed" / "llm-cache.sqlite"


class CacheStats(BaseModel):
    path: str
    entries: int
    size_bytes: int
    by_model: dict[str, int]


class ResponseCache:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Autocommit (isolation_level=None): every put is its own durable transaction.
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=30000")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise PersonaError(f"{self.path}: cannot open the LLM response cache ({exc})") from None

    def get(self, key: str) -> ChatResult | None:
        row = self._db.execute("SELECT response FROM responses WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        result = ChatResult.model_validate_json(row[0])
        result.cached = True
        return result

    def put(self, key: str, model: str, request_json: str, result: ChatResult) -> None:
        stored = result.model_dump_json(exclude={"cached"})
        self._db.execute(
            "INSERT OR REPLACE INTO responses (key, model, request, response, created) "
            "VALUES (?, ?, ?, ?, ?)",
            (key, model, request_json, stored, time.time()),
        )

    def keys(self) -> set[str]:
        return {row[0] for row in self._db.execute("SELECT key FROM responses")}

    def stats(self) -> CacheStats:
        by_model = dict(
            self._db.execute("SELECT model, COUNT(*) FROM responses GROUP BY model").fetchall()
        )
        size = sum(
            p.stat().st_size
            for p in (self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-shm"))
            if p.exists()
        )
        return CacheStats(
            path=str(self.path),
            entries=sum(by_model.values()),
            size_bytes=size,
            by_model=by_model,
        )

    def clear(self, model: str | None = None) -> int:
        if model is None:
            removed = self._db.execute("DELETE FROM responses").rowcount
        else:
            removed = self._db.execute("DELETE FROM responses WHERE model = ?", (model,)).rowcount
        self._db.execute("VACUUM")
        return int(removed)

    def close(self) -> None:
        self._db.close()
