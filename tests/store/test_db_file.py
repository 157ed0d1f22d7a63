"""The database-file guard: a SQLite file deleted or replaced under an open engine is noticed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import text

from pipeline.store.db import dispose_engines, get_engine
from pipeline.store.db_file import DatabaseGoneError, check_database_file


def _open(path: Path) -> str:
    url = f"sqlite:///{path}"
    with get_engine(url).begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS t (x INTEGER)"))
    return url


def test_same_file_passes_and_deleted_file_is_reported(tmp_path: Path) -> None:
    url = _open(tmp_path / "a.db")
    try:
        check_database_file(url)  # the file this process opened: fine
        (tmp_path / "a.db").unlink()
        with pytest.raises(DatabaseGoneError, match="was deleted"):
            check_database_file(url)
    finally:
        dispose_engines()


def test_replaced_file_is_reported(tmp_path: Path) -> None:
    url = _open(tmp_path / "a.db")
    try:
        shutil.copy(tmp_path / "a.db", tmp_path / "backup.db")
        (tmp_path / "backup.db").replace(tmp_path / "a.db")  # same name, another file
        with pytest.raises(DatabaseGoneError, match="replaced by another file"):
            check_database_file(url)
    finally:
        dispose_engines()


def test_unopened_files_and_other_databases_are_not_judged(tmp_path: Path) -> None:
    check_database_file(f"sqlite:///{tmp_path / 'never-opened.db'}")
    check_database_file("postgresql+psycopg://u@127.0.0.1/x")
    url = _open(tmp_path / "b.db")
    dispose_engines()  # a new process (or a forked child) judges the file it opens itself
    (tmp_path / "b.db").unlink()
    check_database_file(url)


def test_a_deleted_file_is_not_recreated_by_a_new_connection(tmp_path: Path) -> None:
    url = _open(tmp_path / "c.db")
    try:
        engine = get_engine(url)
        engine.dispose()  # the next query opens a new connection
        (tmp_path / "c.db").unlink()
        with pytest.raises(Exception, match="was deleted"):
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        assert not (tmp_path / "c.db").exists()
    finally:
        dispose_engines()
