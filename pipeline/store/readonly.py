"""The read-only connection (``pipeline sql`` and the web app's reads): one engine factory that the
databases themselves make read-only, one-statement execution with a time limit and Ctrl-C, and
the formats the rows are printed in."""

from __future__ import annotations

import base64
import csv
import io
import json
import signal
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pipeline.errors import PipelineError

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from pipeline.config import Settings
    from pipeline.store.sqlite_guard import StatementGuard


class ReadOnlyViolation(PipelineError, PermissionError):
    """The query tried to write, attach a file, change a setting or run more than one statement."""


class QueryError(PipelineError, ValueError):
    """The database rejected the query (syntax, unknown table, ...)."""


class QueryStopped(PipelineError, TimeoutError):
    """The query ran past ``sql_timeout`` or was interrupted with Ctrl-C."""


@dataclass
class QueryResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]


def reader_url(settings: Settings) -> str:
    """The URL read-only connections use: the SQLite file itself; on PostgreSQL the read-only role's
    URL (``sql_database_url``, else the one ``pipeline db readonly-role`` stored in the data directory).
    """
    url = settings.db_url
    if not url.startswith("postgresql"):
        return url
    if settings.sql_database_url:
        from pipeline.config import psycopg_url

        return psycopg_url(settings.sql_database_url)
    from pipeline.store.reader_role import ReaderRoleError, reader_url_file

    stored = reader_url_file(settings.data_dir)
    if stored.is_file():
        return stored.read_text().strip()
    raise ReaderRoleError(
        "on PostgreSQL, `pipeline sql` connects as a read-only role: create it once with "
        "`pipeline db readonly-role` (as the database owner), or set PIPELINE_SQL_DATABASE_URL to such a role"
    )


def readonly_engine(settings: Settings) -> Engine:
    """An engine whose every connection can only read, enforced by the database, with a statement
    time limit of ``settings.sql_timeout`` seconds (0 = none).

    SQLite: the file opened ``mode=ro`` + ``query_only`` + an authorizer that denies writes, ATTACH,
    VACUUM, PRAGMA changes and extension loading + a progress handler for the time limit and Ctrl-C
    (``pipeline.store.sqlite_guard``). PostgreSQL: the read-only role (``pipeline.store.reader_role``),
    checked with the server on each new connection; read-only transactions, ``statement_timeout``.
    The caller disposes of the engine. Raises FileNotFoundError for a SQLite file that does not exist.
    """
    from sqlalchemy import create_engine, event
    from sqlalchemy.pool import NullPool

    from pipeline.store.db import SQLITE_BUSY_TIMEOUT_MS
    from pipeline.store.db_file import sqlite_file

    url = reader_url(settings)
    timeout_s = settings.sql_timeout
    path = sqlite_file(url)
    if path is None:
        from pipeline.store.reader_role import check_reader, session_options

        engine = create_engine(url, poolclass=NullPool, connect_args=session_options(timeout_s))

        @event.listens_for(engine, "connect")
        def _check_role(dbapi_conn: Any, _record: Any) -> None:
            try:
                check_reader(dbapi_conn)
            finally:
                dbapi_conn.rollback()

        return engine
    if not path.exists():
        raise FileNotFoundError(f"database {path} does not exist yet (run `pipeline db upgrade`)")
    from pipeline.store.sqlite_guard import StatementGuard, as_sqlite, harden

    engine = create_engine(
        f"sqlite:///file:{path}?mode=ro&uri=true",
        poolclass=NullPool,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
    )

    @event.listens_for(engine, "connect")
    def _harden(dbapi_conn: Any, record: Any) -> None:
        guard = StatementGuard()
        record.info["guard"] = guard
        harden(as_sqlite(dbapi_conn), guard)

    @event.listens_for(engine, "before_cursor_execute")
    def _arm(conn: Any, *_args: Any) -> None:
        conn.info["guard"].arm(timeout_s)

    return engine


def run_readonly(settings: Settings, query: str) -> QueryResult:
    """Run ONE statement on a :func:`readonly_engine` connection and return all its rows.

    One statement per call is enforced by the drivers (sqlite3 refuses a second statement;
    psycopg prepares the text, which PostgreSQL refuses for more than one command). Ctrl-C
    (SIGINT) stops the statement at once. Raises ReadOnlyViolation, QueryStopped or QueryError.
    """
    if not query.strip():
        raise QueryError('the query is empty; give one SQL statement, e.g. "SELECT * FROM photo_people"')
    from pipeline.store.sqlite_guard import as_sqlite

    engine = readonly_engine(settings)
    try:
        with engine.connect() as conn:
            dbapi_conn = conn.connection.driver_connection
            if engine.dialect.name == "sqlite":
                return _run_sqlite(as_sqlite(dbapi_conn), conn.info["guard"], query, settings.sql_timeout)
            return _run_postgres(dbapi_conn, query, settings.sql_timeout)
    finally:
        engine.dispose()


def _result(cursor: Any) -> QueryResult:
    if cursor.description is None:
        return QueryResult([], [])
    return QueryResult([d[0] for d in cursor.description], [tuple(r) for r in cursor.fetchall()])


def _stopped(reason: str | None, timeout_s: float) -> QueryStopped:
    if reason == "timeout":
        return QueryStopped(
            f"the query was stopped after {timeout_s:g} s (setting sql_timeout; PIPELINE_SQL_TIMEOUT=0 for no limit)"
        )
    return QueryStopped("the query was interrupted (Ctrl-C); nothing was changed")


@contextmanager
def _sigint_cancels(cancel: Callable[[], None]) -> Iterator[None]:
    """While the block runs in the main thread, Ctrl-C calls ``cancel`` instead of raising."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, lambda *_: cancel())
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _run_sqlite(conn: sqlite3.Connection, guard: StatementGuard, query: str, timeout_s: float) -> QueryResult:
    cursor = conn.cursor()
    try:
        with _sigint_cancels(guard.cancel):
            guard.arm(timeout_s)
            cursor.execute(query)
            return _result(cursor)
    except sqlite3.ProgrammingError as exc:
        raise QueryError(f"{exc} (`pipeline sql` runs one statement per call)") from None
    except sqlite3.Error as exc:
        message = str(exc)
        if guard.reason is not None:
            raise _stopped(guard.reason, timeout_s) from None
        # Denied while preparing: SQLITE_ERROR "not authorized"; while running (VACUUM): SQLITE_AUTH.
        code = getattr(exc, "sqlite_errorname", "")
        if code in ("SQLITE_AUTH", "SQLITE_READONLY") or "not authorized" in message:
            raise ReadOnlyViolation(
                f"refused: {message} (`pipeline sql` is read-only: SELECT/WITH and report-only PRAGMAs; "
                "no writes, ATTACH, VACUUM, PRAGMA changes or extensions)"
            ) from None
        raise QueryError(message) from None
    finally:
        cursor.close()


def _run_postgres(conn: Any, query: str, timeout_s: float) -> QueryResult:
    import psycopg
    from psycopg import errors

    try:
        with conn.cursor() as cursor:
            try:
                cursor.execute(query, prepare=True)  # a prepared statement holds exactly one command
                return _result(cursor)
            except KeyboardInterrupt:
                raise _stopped("interrupted", timeout_s) from None
    except errors.QueryCanceled:
        raise _stopped("timeout", timeout_s) from None
    except (errors.InsufficientPrivilege, errors.ReadOnlySqlTransaction) as exc:
        raise ReadOnlyViolation(
            f"refused: {_pg_message(exc)} (`pipeline sql` is read-only: it connects as a role that may only SELECT)"
        ) from None
    except psycopg.Error as exc:
        message = _pg_message(exc)
        if "multiple commands" in message:
            message += " (`pipeline sql` runs one statement per call)"
        raise QueryError(message) from None


def _pg_message(exc: Exception) -> str:
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None)
    return str(primary or exc).strip()


def _plain(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "base64:" + base64.b64encode(bytes(value)).decode()
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def to_json(result: QueryResult) -> str:
    """A JSON array, one object per row keyed by column name (bytes as base64, times ISO 8601)."""
    return json.dumps(
        [{c: _plain(v) for c, v in zip(result.columns, row, strict=True)} for row in result.rows],
        ensure_ascii=False,
        indent=1,
    )


def to_csv(result: QueryResult) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(result.columns)
    for row in result.rows:
        writer.writerow([_plain(v) for v in row])
    return out.getvalue()


def cell_text(value: Any) -> str:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"<{len(bytes(value))} bytes>"
    return "" if value is None else str(_plain(value))
