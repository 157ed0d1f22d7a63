"""A batch is claimed in one statement and its results written in one transaction, on SQLite and
PostgreSQL; a photo whose rows cannot be written still ends ``failed`` with its reason without
taking the others' results with it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlmodel import col, select

from pipeline.config import get_settings
from pipeline.ingest.ingestor import Ingestor
from pipeline.people.enrolment import enroll
from pipeline.profiles import Description, Profile, get_profile
from pipeline.store.db import get_engine, session_scope, upgrade
from pipeline.store.models import Caption, Face, Photo
from pipeline.tagging import batch
from pipeline.tagging.batch import process_photos
from tests import images
from tests.tagging.real_profile import RealProfile


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The configured database (``PIPELINE_DATABASE_URL`` for PostgreSQL), migrated."""
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres_url")
        monkeypatch.setenv("PIPELINE_DATABASE_URL", url)
    monkeypatch.setenv("PIPELINE_STALE_AFTER", "600")  # no heartbeat commit during the test
    get_settings.cache_clear()
    url = get_settings().db_url
    upgrade(url)
    yield url
    get_settings.cache_clear()


@pytest.fixture
def album(tmp_path: Path, db_url: str) -> list[int]:
    """Six queued photos (one face, two faces, none, a stranger) with Eileen and Grace enrolled."""
    a, g, c = images.astronaut(), images.grace_hopper(), images.camera()
    folder = tmp_path / "album"
    pictures = [a, g, images.side_by_side(a, g), images.no_face(), c, images.flip(a)]
    paths = [images.save_jpeg(p, folder / f"p{i}.jpg") for i, p in enumerate(pictures)]
    refs = tmp_path / "refs"
    with session_scope(db_url) as session:
        face_a = images.crop_around_face(a, images.ASTRONAUT_FACE, 0.5)
        face_g = images.crop_around_face(g, images.GRACE_HOPPER_FACE, 0.5)
        enroll(session, get_settings(), "Eileen", [images.save_jpeg(face_a, refs / "eileen.jpg")])
        enroll(session, get_settings(), "Grace", [images.save_jpeg(face_g, refs / "grace.jpg")])
    ids = Ingestor(sender=None, db_url=db_url).files_ready(paths)
    assert len(ids) == len(paths)
    return ids


class _Unwritable(RealProfile):
    """The real faces profile, except that the description of the batch's photo number ``bad``
    has no caption: the database refuses that row (NOT NULL), so that photo cannot be written."""

    def __init__(self, real: Profile, bad: int) -> None:
        super().__init__(real)
        self.bad = bad

    def describe(self, scenes: Any, questions: Any) -> list[Description]:
        out = self.real.describe(scenes, questions)
        if len(out) > self.bad:
            out[self.bad] = Description(caption=None, answers=out[self.bad].answers)  # type: ignore[arg-type]  # on purpose
        return out


def _rows(url: str, ids: list[int]) -> dict[int, tuple[str, str | None, int | None]]:
    with session_scope(url) as session:
        photos = session.exec(select(Photo).where(col(Photo.id).in_(ids))).all()
        return {p.id or 0: (p.state, p.error, p.width) for p in photos}


def _captions(url: str) -> dict[int, str]:
    with session_scope(url) as session:
        return {pid: text for pid, text in session.exec(select(Caption.photo_id, Caption.text)).all()}


def test_a_batch_is_claimed_and_written_in_few_commits(album: list[int], db_url: str) -> None:
    commits: list[int] = []

    def count(_conn: Any) -> None:
        commits.append(1)

    engine = get_engine(db_url)
    event.listen(engine, "commit", count)
    try:
        outcome = process_photos(album, "task-batch", get_settings())
    finally:
        event.remove(engine, "commit", count)
    assert sorted(outcome.done) == sorted(album) and not outcome.failed
    # one claim, one write with its cluster join, the scope's end: not three per photo
    assert len(commits) <= 3, commits
    captions = _captions(db_url)
    assert [captions[pid] for pid in album] == [
        "Eileen.",
        "Grace.",
        "Eileen and Grace.",
        "No people.",
        "1 unknown person.",
        "Eileen.",
    ]
    assert all(width for _state, _error, width in _rows(db_url, album).values())  # size stored with the results


def test_one_unwritable_photo_fails_alone_with_its_reason(
    album: list[int], db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = get_settings()
    monkeypatch.setattr(batch, "get_profile", lambda _settings: _Unwritable(get_profile(settings), bad=1))
    outcome = process_photos(album, "task-bad", settings)
    bad = album[1]
    assert outcome.failed == [bad] and sorted(outcome.done) == sorted(pid for pid in album if pid != bad)
    rows = _rows(db_url, album)
    state, error, _width = rows[bad]
    assert state == "failed" and error is not None
    assert error.startswith("could not write the results: IntegrityError")
    assert all(rows[pid][0] == "done" and rows[pid][1] is None for pid in album if pid != bad)
    captions = _captions(db_url)
    assert bad not in captions and sorted(captions) == sorted(pid for pid in album if pid != bad)
    with session_scope(db_url) as session:  # the others' faces are there, the bad photo's are not
        faced = set(session.exec(select(Face.photo_id)).all())
    assert bad not in faced and {album[0], album[2], album[4], album[5]} <= faced
