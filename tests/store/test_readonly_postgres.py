"""`pipeline sql` on PostgreSQL: the read-only role makes every escape of issue 9 fail, whatever
the transaction mode; one statement per call; statement timeout."""

from __future__ import annotations

import stat
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import create_engine, make_url, text

from pipeline.config import get_settings
from pipeline.store.db import upgrade
from pipeline.store.reader_role import ReaderRoleError, create_reader_role
from pipeline.store.readonly import QueryError, QueryStopped, ReadOnlyViolation, run_readonly

pytestmark = pytest.mark.postgres


@pytest.fixture
def reader(data_dir: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A migrated PostgreSQL database with one person and one caption, and its reader role set up."""
    monkeypatch.setenv("PIPELINE_DATABASE_URL", postgres_url)
    get_settings.cache_clear()
    upgrade(postgres_url)
    engine = create_engine(postgres_url)
    # Roles are global to the server: one per test database, so parallel test databases do not clash.
    name = f"reader_{make_url(postgres_url).database}"
    try:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO people (name, name_key, created_at) VALUES ('Zoë', 'zoë', now())"))
            conn.execute(
                text(
                    "INSERT INTO photos (path, sha256, size, mtime, state, work, attempts, created_at) "
                    "VALUES ('/a.jpg', 'x', 1, 1.0, 'done', 'tag', 0, now())"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO captions (photo_id, text, profile, model_version, created_at) "
                    "SELECT id, 'Zoë at the beach.', 'faces', 'v', now() FROM photos"
                )
            )
            create_reader_role(conn, postgres_url, data_dir, name)
    finally:
        engine.dispose()
    return name


def _count(postgres_url: str, sql: str) -> int:
    engine = create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(sql)).scalar_one())
    finally:
        engine.dispose()


ESCAPES = [
    "COMMIT; BEGIN READ WRITE; INSERT INTO people (name, name_key, created_at) VALUES ('x', 'x', now()); COMMIT",
    "BEGIN READ WRITE; DELETE FROM captions; COMMIT",
    "COMMIT; BEGIN READ WRITE; DROP VIEW photo_people; COMMIT",
    "INSERT INTO people (name, name_key, created_at) VALUES ('x', 'x', now())",
    "DELETE FROM captions",
    "WITH gone AS (DELETE FROM captions RETURNING 1) SELECT count(*) FROM gone",
    "DROP VIEW photo_people",
    "CREATE TABLE planted (x int)",
    "COPY (SELECT 1) TO PROGRAM 'id > {out}'",
    "COPY (SELECT 1) TO '{out}'",
    "SELECT pg_read_file('/etc/passwd')",
    "SELECT pg_ls_dir('.')",
    "SELECT lo_import('/etc/passwd')",
    "SELECT set_config('role', 'postgres', false)",
    "SET ROLE postgres",
    "SELECT nextval('people_id_seq')",
]


def test_escapes_fail(reader: str, postgres_url: str, tmp_path: Path) -> None:
    """Every escape of issue 9, each in its own call (one database set-up for all: they are many)."""
    out = tmp_path / "planted"
    for statement in ESCAPES:
        with pytest.raises((ReadOnlyViolation, QueryError)):
            run_readonly(get_settings(), statement.format(out=out))
        assert not out.exists(), statement
        assert _count(postgres_url, "SELECT count(*) FROM people") == 1, statement
        assert _count(postgres_url, "SELECT count(*) FROM captions") == 1, statement
        assert _count(postgres_url, "SELECT count(*) FROM pg_views WHERE viewname = 'photo_people'") == 1, statement
        assert _count(postgres_url, "SELECT count(*) FROM pg_tables WHERE tablename = 'planted'") == 0, statement


def test_privileges_are_the_wall(reader: str, data_dir: Path, postgres_url: str) -> None:
    """Connected as the role directly, a read-write transaction still cannot change anything."""
    url = make_url((data_dir / "sql-reader.url").read_text().strip()).set(drivername="postgresql")
    with psycopg.connect(url.render_as_string(hide_password=False), autocommit=True) as conn:
        for opening in (["BEGIN READ WRITE"], ["BEGIN", "SET transaction_read_only = off"]):
            for statement in opening:
                conn.execute(statement)
            for write in ("DELETE FROM captions", "DROP VIEW photo_people", "TRUNCATE people CASCADE"):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(write)
                conn.execute("ROLLBACK")
                for statement in opening:
                    conn.execute(statement)
            conn.execute("ROLLBACK")
    assert _count(postgres_url, "SELECT count(*) FROM captions") == 1


def test_reads_work_and_url_is_private(reader: str, data_dir: Path) -> None:
    result = run_readonly(get_settings(), "SELECT person_name FROM photo_people UNION ALL SELECT name FROM people")
    assert result.rows == [("Zoë",)]
    assert run_readonly(get_settings(), "SELECT count(*) FROM photos WHERE path LIKE '%.jpg'").rows == [(1,)]
    assert stat.S_IMODE((data_dir / "sql-reader.url").stat().st_mode) == 0o600
    assert reader in (data_dir / "sql-reader.url").read_text()


def test_one_statement_per_call(reader: str) -> None:
    with pytest.raises(QueryError, match="one statement per call"):
        run_readonly(get_settings(), "SELECT 1; SELECT 2")


def test_statement_timeout(reader: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIPELINE_SQL_TIMEOUT", "0.5")
    get_settings.cache_clear()
    with pytest.raises(QueryStopped, match="stopped after 0.5 s"):
        run_readonly(get_settings(), "SELECT pg_sleep(60)")


def test_a_writable_role_is_refused(reader: str, postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIPELINE_SQL_DATABASE_URL", postgres_url)  # the owner: could write
    get_settings.cache_clear()
    with pytest.raises(ReaderRoleError, match="not read-only"):
        run_readonly(get_settings(), "SELECT 1")


def test_missing_role_says_how_to_create_it(data_dir: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIPELINE_DATABASE_URL", postgres_url)
    get_settings.cache_clear()
    with pytest.raises(ReaderRoleError, match="pipeline db readonly-role"):
        run_readonly(get_settings(), "SELECT 1")


def test_ctrl_c_cancels_the_query_on_the_server(
    reader: str, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGINT while PostgreSQL sleeps: a clear error at once, and the server stops the statement."""
    import os
    import signal
    import threading
    import time

    # The statement limit must not end the query before the Ctrl-C does, however slow a busy
    # machine makes the wait for the statement to show in pg_stat_activity.
    monkeypatch.setenv("PIPELINE_SQL_TIMEOUT", "400")
    get_settings.cache_clear()
    # Ctrl-C as a `pipeline sql` process has it (Python's default handler), whatever handler
    # another test of this session left installed.
    previous_handler = signal.signal(signal.SIGINT, signal.default_int_handler)

    def press_ctrl_c() -> None:
        deadline = time.monotonic() + 240
        sleeping = (
            f"SELECT count(*) FROM pg_stat_activity WHERE usename = '{reader}' AND state = 'active' "
            "AND query LIKE 'SELECT pg_sleep(600)%'"
        )
        while time.monotonic() < deadline:
            try:
                if _count(postgres_url, sleeping):
                    break  # the reader's statement itself runs on the server
            except Exception:  # a busy server refusing the observer's connection: look again
                pass
            time.sleep(0.1)
        os.kill(os.getpid(), signal.SIGINT)

    presser = threading.Thread(target=press_ctrl_c)
    presser.start()
    started = time.monotonic()
    try:
        with pytest.raises(QueryStopped, match="interrupted"):
            run_readonly(get_settings(), "SELECT pg_sleep(600)")
    finally:
        presser.join()
        signal.signal(signal.SIGINT, previous_handler)
    assert time.monotonic() - started < 400  # less than the 600 s it asked for
    running = f"SELECT count(*) FROM pg_stat_activity WHERE usename = '{reader}' AND query LIKE '%pg_sleep(600)%'"
    wait_for_zero = time.monotonic() + 30
    while _count(postgres_url, running) and time.monotonic() < wait_for_zero:
        time.sleep(0.2)
    assert _count(postgres_url, running) == 0, "the server no longer runs it"
