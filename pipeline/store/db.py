"""Engines, sessions and migrations.

Engines are created lazily, once per process (and re-created after a fork: SQLAlchemy pools are
not fork-safe). SQLite runs in WAL mode with a busy timeout so the watcher, the workers and a
user's SQL session can use the file at the same time.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

from sqlalchemy import CursorResult, create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool
from sqlalchemy.sql import Executable
from sqlmodel import Session

from pipeline.store.db_file import check_database_file, forget_opened, remember_opened, sqlite_file

SQLITE_BUSY_TIMEOUT_MS = 30_000
_lock = threading.Lock()
_engines: dict[tuple[str, bool, int], Engine] = {}


def _on_sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA journal_mode = WAL")
    cur.execute("PRAGMA synchronous = NORMAL")
    cur.execute("PRAGMA foreign_keys = ON")
    cur.close()


def make_engine(url: str, read_only: bool = False) -> Engine:
    """Build a new engine for ``url``.

    ``read_only=True`` makes the *connection* refuse writes: SQLite opens the file with
    ``mode=ro``; PostgreSQL sessions get ``default_transaction_read_only=on``.
    """
    sqlite_path = sqlite_file(url)
    if sqlite_path is not None:
        if read_only:
            if not sqlite_path.exists():
                raise FileNotFoundError(f"database {sqlite_path} does not exist yet (run `pipeline db upgrade`)")
            ro_url = f"sqlite:///file:{sqlite_path}?mode=ro&uri=true"
            engine = create_engine(ro_url, poolclass=NullPool)

            @event.listens_for(engine, "connect")
            def _ro_connect(dbapi_conn: Any, _record: Any) -> None:
                dbapi_conn.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
                dbapi_conn.execute("PRAGMA query_only = ON")

            return engine
        sqlite_path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False})
        event.listen(engine, "connect", _on_sqlite_connect)
        # A path this process opened before and that is gone now must not come back as a new
        # empty database: refuse to connect (DatabaseGoneError) instead.
        event.listen(engine, "do_connect", lambda *_: check_database_file(url))
        event.listen(engine, "connect", lambda _conn, _record: remember_opened(sqlite_path))
        return engine
    connect_args: dict[str, Any] = {}
    if read_only and url.startswith("postgresql"):
        connect_args["options"] = "-c default_transaction_read_only=on"
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args)


def get_engine(url: str | None = None, read_only: bool = False) -> Engine:
    """The process-wide engine for ``url`` (default: the configured database)."""
    if url is None:
        from pipeline.config import get_settings

        url = get_settings().db_url
    key = (url, read_only, os.getpid())
    with _lock:
        engine = _engines.get(key)
        if engine is None:
            engine = make_engine(url, read_only=read_only)
            _engines[key] = engine
        return engine


def dispose_engines() -> None:
    """Forget every engine and the database files' identities (call in a forked child before
    using the database; see :mod:`pipeline.store.db_file`)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose(close=False)
        _engines.clear()
    forget_opened()


@contextmanager
def session_scope(url: str | None = None) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    session = Session(get_engine(url), expire_on_commit=False)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def execute_dml(session: Session, statement: Executable) -> int:
    """Run an UPDATE or DELETE in ``session`` (not committed); returns how many rows it matched."""
    result = cast("CursorResult[Any]", session.execute(statement))  # UPDATE/DELETE give a CursorResult
    return int(result.rowcount)


def alembic_config(url: str) -> Any:
    """An Alembic Config pointing at this package's migrations and ``url``."""
    from alembic.config import Config

    migrations = Path(__file__).resolve().parents[2] / "migrations"
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["configure_logger"] = False
    return cfg


def upgrade(url: str | None = None, revision: str = "head") -> None:
    """Run Alembic migrations up to ``revision`` (creates a fresh database)."""
    from alembic import command

    if url is None:
        from pipeline.config import get_settings

        url = get_settings().db_url
    sqlite_path = sqlite_file(url)
    if sqlite_path is not None:
        sqlite_path.parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str = "base") -> None:
    from alembic import command

    command.downgrade(alembic_config(url), revision)


def current_revision(url: str | None = None) -> str | None:
    """The database's Alembic revision, or None for an empty database."""
    from alembic.runtime.migration import MigrationContext

    with get_engine(url).connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    cfg = alembic_config("sqlite://")
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head is not None
    return head


def ensure_schema(url: str | None = None) -> None:
    """Upgrade the database if it is not at the latest revision (used by run/enroll/watch)."""
    if current_revision(url) != head_revision():
        upgrade(url)
