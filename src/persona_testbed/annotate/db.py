"""Opening the study database: SQLite (default) or PostgreSQL, with safe concurrent writes."""

from __future__ import annotations

import importlib.util
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, OperationalError
from sqlalchemy.orm import Session

from persona_testbed.annotate.models import SCHEMA_VERSION, Base, Meta
from persona_testbed.errors import PersonaError

# SQLite waits this long for another writer's lock instead of failing at once.
SQLITE_BUSY_TIMEOUT_MS = 30_000


def normalize_url(url: str) -> str:
    """A plain file path means an SQLite file; `postgresql://` uses psycopg 3."""
    if "://" not in url:
        return f"sqlite:///{Path(url).expanduser().resolve()}"
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def display_url(url: str) -> str:
    """The URL with any password hidden, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def _sqlite_engine(url: str) -> Engine:
    path = make_url(url).database
    if path and path != ":memory:" and not Path(path).parent.is_dir():
        raise PersonaError(f"database {url}: folder {Path(path).parent} does not exist")
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        pool_size=8,
        max_overflow=24,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # A writer takes the write lock up front (BEGIN IMMEDIATE): a deferred transaction that
        # reads, then writes, can fail with "database is locked" no matter the busy timeout.
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")

    return engine


def _make_engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise PersonaError(f"database {url}: not a database URL or file path") from None
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    if parsed.get_backend_name() == "postgresql":
        driver = parsed.get_driver_name()
        module = {"psycopg": "psycopg", "psycopg2": "psycopg2"}.get(driver, driver)
        if importlib.util.find_spec(module) is None:
            raise PersonaError(
                f"database {display_url(url)}: PostgreSQL needs the '{module}' driver "
                "(pip install 'psycopg[binary]')"
            )
        return create_engine(url, pool_size=8, max_overflow=24, pool_pre_ping=True)
    raise PersonaError(
        f"database {display_url(url)}: unsupported backend '{parsed.get_backend_name()}' "
        "(use an SQLite file or a postgresql:// URL)"
    )


class Database:
    """One study database. `read()` and `write()` give sessions; `write()` commits."""

    def __init__(self, url: str) -> None:
        self.url = normalize_url(url)
        # What every message and banner shows: the URL with its password masked.
        self.display = display_url(self.url)
        self.engine = _make_engine(self.url)
        self._writer = (
            self.engine.execution_options(sqlite_begin="IMMEDIATE")
            if self.engine.dialect.name == "sqlite"
            else self.engine
        )
        self._secret: bytes | None = None

    @classmethod
    def open(cls, url: str, *, create: bool = True) -> Database:
        """Connect, create the tables if missing, and make sure the server secret exists.

        With `create=False` (serve, export) a missing SQLite file is an error rather than a new
        empty database: a mistyped --db must not look like a study with no answers."""
        normalized = normalize_url(url)
        if not create:
            parsed = make_url(normalized)
            path = parsed.database
            is_sqlite = parsed.get_backend_name() == "sqlite"
            if is_sqlite and path and path != ":memory:" and not Path(path).is_file():
                raise PersonaError(
                    f"database {path}: no such file (create a study first with "
                    "`persona annotate create-study --db ...`)"
                )
        database = cls(url)
        try:
            Base.metadata.create_all(database.engine)
            database._ensure_meta()
        except OperationalError as exc:
            database.close()
            reason = str(exc.orig).splitlines()[0] if exc.orig else str(exc).splitlines()[0]
            raise PersonaError(f"database {display_url(database.url)}: {reason}") from None
        return database

    def _ensure_meta(self) -> None:
        wanted = {"schema_version": SCHEMA_VERSION, "secret": secrets.token_hex(32)}
        for key, value in wanted.items():
            try:
                with self.write() as session:
                    if session.get(Meta, key) is None:
                        session.add(Meta(key=key, value=value))
            except IntegrityError:
                pass  # another process created it at the same moment: theirs stands
        with self.read() as session:
            version = session.get(Meta, "schema_version")
            if version is None or version.value != SCHEMA_VERSION:
                found = None if version is None else version.value
                raise PersonaError(
                    f"database {display_url(self.url)}: schema version {found}, "
                    f"this persona-testbed needs {SCHEMA_VERSION}"
                )

    @property
    def secret(self) -> bytes:
        """The key that signs session cookies and CSRF tokens (kept in the database so that
        sessions survive a restart and several server processes agree)."""
        if self._secret is None:
            with self.read() as session:
                value = session.scalar(select(Meta.value).where(Meta.key == "secret"))
            if value is None:
                raise PersonaError(f"database {display_url(self.url)}: not initialised")
            self._secret = bytes.fromhex(value)
        return self._secret

    @contextmanager
    def read(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A transaction that commits when the block ends and rolls back on any exception."""
        with Session(self._writer, expire_on_commit=False) as session, session.begin():
            yield session

    def close(self) -> None:
        self.engine.dispose()
