"""`pipeline sql` on SQLite: every escape of issue 9 is refused by the database (authorizer,
``mode=ro``, one statement per call), queries stop at their time limit and on Ctrl-C."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from pipeline.config import get_settings
from pipeline.store.db import session_scope, upgrade
from pipeline.store.readonly import QueryError, QueryStopped, ReadOnlyViolation, readonly_engine, run_readonly

ENDLESS = (
    "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 1000000000000) SELECT count(*) FROM c"
)


@pytest.fixture
def db(data_dir: Path) -> Path:
    upgrade(get_settings().db_url)
    with session_scope() as session:
        session.execute(
            text("INSERT INTO people (name, name_key, created_at) VALUES ('Zoë', 'zoë', '2024-01-01 00:00:00')")
        )
    return data_dir


def _people() -> int:
    return int(run_readonly(get_settings(), "SELECT count(*) FROM people").rows[0][0])


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO people (name, name_key, created_at) VALUES ('x', 'x', '2024-01-01')",
        "DELETE FROM people",
        "UPDATE people SET name = 'y'",
        "DROP VIEW photo_people",
        "CREATE TABLE t (x)",
        "CREATE TEMP TABLE t (x)",
        "PRAGMA journal_mode=DELETE",
        "PRAGMA user_version = 7",
        "PRAGMA query_only = OFF",
        "VACUUM",
        "SELECT load_extension('/lib/x86_64-linux-gnu/libc.so.6')",
        "BEGIN IMMEDIATE",
    ],
)
def test_writes_and_setting_changes_are_refused(db: Path, statement: str) -> None:
    with pytest.raises(ReadOnlyViolation) as caught:
        run_readonly(get_settings(), statement)
    assert "refused" in str(caught.value) and "read-only" in str(caught.value)
    assert "disk I/O" not in str(caught.value)
    assert _people() == 1
    assert run_readonly(get_settings(), "SELECT count(*) FROM photo_people").columns == ["count(*)"]


@pytest.mark.parametrize("statement", ["ATTACH DATABASE '{p}' AS x", "VACUUM INTO '{p}'"])
def test_no_file_is_created(db: Path, tmp_path: Path, statement: str) -> None:
    target = tmp_path / "escape.db"
    with pytest.raises(ReadOnlyViolation):
        run_readonly(get_settings(), statement.format(p=target))
    assert not target.exists()


def test_one_statement_per_call(db: Path) -> None:
    with pytest.raises(QueryError, match="one statement"):
        run_readonly(get_settings(), "SELECT 1; DELETE FROM people")
    with pytest.raises(QueryError, match="empty"):
        run_readonly(get_settings(), "  ")
    assert _people() == 1


def test_reads_and_report_pragmas_work(db: Path) -> None:
    settings = get_settings()
    assert run_readonly(settings, "SELECT name FROM people").rows == [("Zoë",)]
    columns = {row[1] for row in run_readonly(settings, "PRAGMA table_info(photos)").rows}
    assert {"path", "state"} <= columns
    assert run_readonly(settings, "PRAGMA journal_mode").rows == [("wal",)]
    assert run_readonly(settings, "SELECT count(*) FROM pragma_table_list").rows[0][0] > 5
    assert run_readonly(settings, "SELECT count(*) FROM captions_fts WHERE captions_fts MATCH 'park'").rows == [(0,)]
    assert run_readonly(
        settings, "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM c WHERE n < 10) SELECT sum(n) FROM c"
    ).rows == [(55,)]


def test_statement_timeout(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIPELINE_SQL_TIMEOUT", "0.5")
    get_settings.cache_clear()
    started = time.monotonic()
    with pytest.raises(QueryStopped, match="stopped after 0.5 s"):
        run_readonly(get_settings(), ENDLESS)
    assert time.monotonic() - started < 120  # generous: the point is that it stops at all


def test_ctrl_c_stops_the_query_at_once(db: Path) -> None:
    """SIGINT during a query that would run for hours: it stops with a clear error."""
    default = signal.getsignal(signal.SIGINT)

    def press_ctrl_c() -> None:
        deadline = time.monotonic() + 60
        while signal.getsignal(signal.SIGINT) is default and time.monotonic() < deadline:
            time.sleep(0.01)  # wait until the query has taken over SIGINT
        time.sleep(0.3)
        os.kill(os.getpid(), signal.SIGINT)

    presser = threading.Thread(target=press_ctrl_c)
    presser.start()
    try:
        with pytest.raises(QueryStopped, match="interrupted"):
            run_readonly(get_settings(), ENDLESS)
    finally:
        presser.join()
    assert signal.getsignal(signal.SIGINT) is default


def test_web_reads_share_the_engine(db: Path) -> None:
    """The engine the web app reads through is read-only too (authorizer on every connection)."""
    engine = readonly_engine(get_settings())
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT name FROM people")).all() == [("Zoë",)]
            with pytest.raises(Exception, match="not authorized"):
                conn.execute(text("DELETE FROM people"))
    finally:
        engine.dispose()
    assert _people() == 1
