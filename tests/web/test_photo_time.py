"""``faces.photo_time`` (migration 0006) follows the photo's time and state on SQLite and
PostgreSQL, and the People/Person queries built on it agree with the photos."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text, update
from sqlmodel import Session

from pipeline.store.db import get_engine, upgrade
from pipeline.store.models import Face, Person, Photo
from pipeline.web import queries


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'pipeline.db'}"
    return str(request.getfixturevalue("postgres_url"))


def _times(url: str) -> dict[int, float | None]:
    with get_engine(url).connect() as conn:
        return {int(r[0]): r[1] for r in conn.execute(text("SELECT id, photo_time FROM faces")).all()}


def test_photo_time_follows_photos(db_url: str) -> None:
    upgrade(db_url)
    engine = get_engine(db_url)
    taken = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    with Session(engine) as session:
        ann = Person(name="Ann", name_key="ann")
        session.add(ann)
        session.flush()
        photos = [
            Photo(path="/a/old.jpg", sha256="a" * 64, size=1, mtime=1_000_000.0, state="done"),
            Photo(path="/a/exif.jpg", sha256="b" * 64, size=1, mtime=2_000_000.0, taken_at=taken, state="done"),
            Photo(path="/a/new.jpg", sha256="c" * 64, size=1, mtime=3_000_000.0, state="done"),
        ]
        session.add_all(photos)
        session.flush()
        for photo in photos:
            session.add(
                Face(photo_id=photo.id, idx=0, x=0, y=0, w=0.1, h=0.1, det_score=1, embedding=b"", person_id=ann.id)
            )
        session.commit()
        ids = [p.id for p in photos]
        person_id = ann.id
    assert sorted(_times(db_url).values()) == [1_000_000.0, 3_000_000.0, taken.timestamp()]

    with engine.connect() as conn:
        cards = queries.people_cards(conn)
        page, total = queries.person_photos(conn, person_id, 0, 2)
    assert [(c.name, c.photos) for c in cards] == [("Ann", 3)]
    assert cards[0].last_seen == datetime.fromtimestamp(taken.timestamp(), UTC)  # EXIF time beats the newer mtime
    assert total == 3 and [c.name for c in page] == ["exif.jpg", "new.jpg"]

    with engine.begin() as conn:
        conn.execute(update(Photo).where(Photo.id == ids[1]).values(state="missing"))
        conn.execute(update(Photo).where(Photo.id == ids[0]).values(mtime=4_000_000.0))
    with engine.connect() as conn:
        cards = queries.people_cards(conn)
        page, total = queries.person_photos(conn, person_id, 0, 5)
    assert cards[0].photos == 2 and cards[0].last_seen == datetime.fromtimestamp(4_000_000.0, UTC)
    assert total == 2 and [c.name for c in page] == ["old.jpg", "new.jpg"]

    with engine.begin() as conn:
        conn.execute(update(Photo).where(Photo.id == ids[1]).values(state="done"))
    with engine.connect() as conn:
        assert queries.people_cards(conn)[0].photos == 3
