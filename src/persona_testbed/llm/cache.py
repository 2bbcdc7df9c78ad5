"""Response cache: SQLite in WAL mode, keyed by a hash of the canonical request.

Outside an event loop every write is its own transaction. Inside one (the client's batches) the
writes of one round of the loop share a transaction (group commit: one WAL commit for many
calls), committed when the loop gets to it, and always before the client sends its next request:
the client awaits `committed()`, which returns once the round's commit is done, so every task
that wrote in that round waits for the same single commit (a synchronous commit per send would
be one WAL commit, its pages rewritten, per call). So a run killed with
SIGKILL loses no completed call but those it had not yet committed, and those are never more
than the calls it could have in flight anyway (WAL pages written by a committed transaction
survive the death of the process). Another process sharing the cache waits for the open
transaction (busy timeout) and then sees every claim and reply in it.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import socket
import sqlite3
import sys
import time
import uuid
from pathlib import Path

from pydantic import BaseModel, ValidationError

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
CREATE TABLE IF NOT EXISTS claims (
    key TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    created REAL NOT NULL
);
"""
# A claim older than this is stale even if its process seems alive (a reused pid, a process
# on another host): its request is sent again. Longer than any one call with all its retries.
DEFAULT_CLAIM_TTL_S = 900.0


class CacheWriteError(PersonaError):
    """The cache could not be written (a full disk, a read-only file)."""


# Caches of this process holding an open (group-commit) transaction. One connection's open
# write transaction blocks every other connection's writes, so before a cache opens one, the
# others of this process commit theirs (two clients on one cache file in one event loop would
# otherwise wait on each other until the busy timeout).
_OPEN: set[ResponseCache] = set()


def flush_open_caches(but: ResponseCache | None = None) -> None:
    """Commit every open group-commit transaction of this process but `but`'s (see the module
    docstring), e.g. before this thread blocks on another that writes the same cache file."""
    for cache in list(_OPEN):
        if cache is not but:
            cache.flush()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


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
    def __init__(self, path: Path, *, claim_ttl_s: float = DEFAULT_CLAIM_TTL_S) -> None:
        self.path = Path(path)
        self.claim_ttl_s = claim_ttl_s
        self._owner = uuid.uuid4().hex
        # A failed group commit run by the event loop, raised by the next write or flush.
        self._failed_commit: CacheWriteError | None = None
        # Tasks waiting in committed() for the open transaction's commit (one future each, so
        # a cancelled waiter cancels only its own).
        self._commit_waiters: list[asyncio.Future[None]] = []
        self._commit_loop: asyncio.AbstractEventLoop | None = None  # runs the open one's commit
        self._host = socket.gethostname()
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
        except OSError as exc:
            why = "the disk is full" if exc.errno == errno.ENOSPC else exc.strerror
            raise PersonaError(f"{self.path}: cannot open the LLM response cache ({why})") from None

    def get(self, key: str) -> ChatResult | None:
        """The cached reply, or None. An entry that no longer loads (written by an older
        version, or a reply that should never have been stored) is a miss, with a warning:
        the call is made again and its answer replaces the entry."""
        row = self._db.execute("SELECT response FROM responses WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        try:
            result = ChatResult.model_validate_json(row[0])
        except ValidationError as exc:
            reason = exc.errors()[0]["msg"] if exc.errors() else "invalid"
            print(
                f"warning: {self.path}: ignoring an unreadable cached response ({reason}); "
                "calling the model again",
                file=sys.stderr,
            )
            return None
        result.cached = True
        return result

    def put(self, key: str, model: str, request_json: str, result: ChatResult) -> None:
        """Store a reply; one that would not load back unchanged is refused (ValueError), so
        the cache never holds an entry that breaks every later read."""
        stored = result.model_dump_json(exclude={"cached"})
        try:
            ChatResult.model_validate_json(stored)
        except ValidationError as exc:
            raise ValueError(f"refusing to cache a reply that cannot be read back: {exc}") from None
        self._write(
            "INSERT OR REPLACE INTO responses (key, model, request, response, created) "
            "VALUES (?, ?, ?, ?, ?)",
            (key, model, request_json, stored, time.time()),
        )

    def _write_error(self, exc: sqlite3.OperationalError) -> CacheWriteError:
        full = "full" in str(exc) or getattr(exc, "sqlite_errorcode", None) == 13
        why = "the disk is full" if full else str(exc)
        return CacheWriteError(
            f"{self.path}: cannot write to the LLM response cache ({why}); free space or "
            "point --cache at another disk (completed calls so far are kept)"
        )

    def _write(self, sql: str, params: tuple[object, ...]) -> int:
        self._raise_failed_commit()
        try:
            self._begin()
            return int(self._db.execute(sql, params).rowcount)
        except sqlite3.OperationalError as exc:
            self._rollback()
            raise self._write_error(exc) from None

    def _begin(self) -> None:
        """Inside an event loop, open the round's transaction (see the module docstring)."""
        if self._db.in_transaction:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no event loop: autocommit, every write is its own transaction
        flush_open_caches(but=self)
        self._db.execute("BEGIN IMMEDIATE")
        _OPEN.add(self)
        self._commit_loop = loop
        loop.call_soon(self._commit_later)

    def _commit_later(self) -> None:
        told = bool(self._commit_waiters)  # a failed commit raises in each of them
        try:
            self.flush()
        except CacheWriteError as exc:
            if not told:  # no one to tell: the next write or flush raises it
                self._failed_commit = exc

    async def committed(self) -> None:
        """Return once every write made so far is committed: at once when no transaction is
        open, else after the group commit the event loop runs at its next round (CacheWriteError
        if that commit fails). The client awaits this before it sends a request."""
        # Only the loop that opened the transaction runs its commit: one opened in a loop that
        # has ended (or another thread's) is committed at once below, never waited for.
        loop = asyncio.get_running_loop()
        if self._db.in_transaction and self._commit_loop is loop:
            waiter: asyncio.Future[None] = loop.create_future()
            self._commit_waiters.append(waiter)
            await waiter
        # Tasks that ran between that commit and this task's wake-up may have opened the next
        # round's transaction: commit it now, so nothing written so far is left uncommitted
        # when the caller sends (a no-op when none is open, the usual case).
        self.flush()

    def _wake_waiters(self, error: CacheWriteError | None = None) -> None:
        """Resolve the committed() waiters (with `error` if the commit failed)."""
        waiters, self._commit_waiters = self._commit_waiters, []
        for waiter in waiters:
            if not waiter.done():
                if error is None:
                    waiter.set_result(None)
                else:
                    waiter.set_exception(error)

    def _raise_failed_commit(self) -> None:
        if self._failed_commit is not None:
            error, self._failed_commit = self._failed_commit, None
            raise error

    def _rollback(self) -> None:
        _OPEN.discard(self)
        if self._db.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")

    def flush(self) -> None:
        """Commit the open group-commit transaction, if any (CacheWriteError if it fails, or
        if one the event loop ran failed)."""
        _OPEN.discard(self)
        if self._db.in_transaction:
            try:
                self._db.execute("COMMIT")
            except sqlite3.OperationalError as exc:
                self._rollback()
                error = self._write_error(exc)
                self._wake_waiters(error)
                raise error from None
        if self._commit_waiters:
            self._wake_waiters()
        self._raise_failed_commit()

    # ---- claims: one process sends a request, others sharing the cache wait for its answer

    def claim(self, key: str) -> bool:
        """Claim `key` for this cache object; False while another live owner holds it.

        A claim whose process is gone (same host, pid not alive: killed with SIGKILL) or that
        is older than `claim_ttl_s` is stale and taken over.
        """
        now = time.time()
        if self._write(
            "INSERT OR IGNORE INTO claims (key, owner, host, pid, created) VALUES (?, ?, ?, ?, ?)",
            (key, self._owner, self._host, os.getpid(), now),
        ):
            return True
        row = self._db.execute(
            "SELECT owner, host, pid, created FROM claims WHERE key = ?", (key,)
        ).fetchone()
        if row is None:  # released between the two statements: try once more
            return self.claim(key)
        owner, host, pid, created = row
        if owner == self._owner:
            return True
        stale = now - float(created) > self.claim_ttl_s or (
            host == self._host and not _pid_alive(int(pid))
        )
        if not stale:
            return False
        # Take it over only if it is still the stale claim we saw (another waiter may win).
        return bool(
            self._write(
                "UPDATE claims SET owner = ?, host = ?, pid = ?, created = ? "
                "WHERE key = ? AND owner = ?",
                (self._owner, self._host, os.getpid(), now, key, owner),
            )
        )

    def release(self, key: str) -> None:
        # A claim left behind (disk full) expires: its owner is gone once this process exits.
        with contextlib.suppress(CacheWriteError):
            self._write("DELETE FROM claims WHERE key = ? AND owner = ?", (key, self._owner))

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
        self.flush()
        if model is None:
            removed = self._write("DELETE FROM responses", ())
        else:
            removed = self._write("DELETE FROM responses WHERE model = ?", (model,))
        self.flush()
        self._db.execute("VACUUM")
        return int(removed)

    def close(self) -> None:
        try:
            self.flush()
        finally:
            _OPEN.discard(self)
            self._db.close()
