"""Alembic migrations on an empty SQLite file and on the local PostgreSQL database."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from pipeline.store import db
from pipeline.store.models import metadata

TABLES = {
    "people",
    "reference_images",
    "person_concepts",
    "enrolment_events",
    "photos",
    "faces",
    "person_scores",
    "captions",
    "answers",
    "clusters",
}


def _check(url: str) -> None:
    db.upgrade(url)
    assert db.current_revision(url) == db.head_revision()
    engine = create_engine(url)
    try:
        inspector = inspect(engine)
        assert TABLES <= set(inspector.get_table_names())
        assert {"photo_people", "photo_captions"} <= set(inspector.get_view_names())
        photo_columns = {c["name"] for c in inspector.get_columns("photos")}
        assert {"path", "sha256", "state", "error", "attempts", "taken_at", "width", "height"} <= photo_columns
        with engine.connect() as conn:  # the schema matches the models exactly (alembic check)
            diff = compare_metadata(MigrationContext.configure(conn, opts={"include_object": _include}), metadata)
        assert diff == [], diff
        with engine.begin() as conn:  # full-text search works on this dialect
            conn.execute(
                text(
                    "INSERT INTO photos (path, sha256, size, mtime, state, work, attempts, created_at) "
                    "VALUES ('/a.jpg', 'x', 1, 1.0, 'done', 'tag', 0, CURRENT_TIMESTAMP)"
                )
            )
            pid = conn.execute(text("SELECT id FROM photos")).scalar_one()
            conn.execute(
                text(
                    "INSERT INTO captions (photo_id, text, profile, model_version, created_at) "
                    "VALUES (:p, 'Susan and Mike are playing in the park.', 'plvm', 'v', CURRENT_TIMESTAMP)"
                ),
                {"p": pid},
            )
        from pipeline.store.search import search_captions

        hits = search_captions(engine, "susan play park")
        assert [h.path for h in hits] == ["/a.jpg"]
        assert search_captions(engine, "Mike Peter") == []
    finally:
        engine.dispose()
        db.dispose_engines()
    db.downgrade(url, "base")
    engine = create_engine(url)
    assert not TABLES & set(inspect(engine).get_table_names())
    engine.dispose()
    db.upgrade(url)


def _include(obj, name, type_, reflected, compare_to):  # type: ignore[no-untyped-def]
    if (
        type_ == "table"
        and name in ("captions_fts", "photo_people", "photo_captions", "caption_lexemes")
        or (name or "").startswith(("captions_fts", "captions_rel_fts"))
    ):
        return False
    return name not in ("text_tsv", "ix_captions_text_tsv")


def test_sqlite_empty_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    _check(url)
    engine = db.make_engine(url)
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == db.SQLITE_BUSY_TIMEOUT_MS
    engine.dispose()


@pytest.mark.postgres
def test_postgres(postgres_url: str) -> None:
    _check(postgres_url)


def test_alembic_command_line_config(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    command.upgrade(db.alembic_config(url), "head")
    assert db.current_revision(url) == db.head_revision()
