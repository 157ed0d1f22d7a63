"""No photo left behind: a batch-wide failure (the enrolled people cannot be loaded, a profile
returns the wrong number of results) ends each photo ``failed`` with the real reason at once;
an error outside the per-photo guards releases the claims for another try."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlmodel import select

from pipeline.config import get_settings
from pipeline.ingest.ingestor import Ingestor
from pipeline.people.enrolment import enroll
from pipeline.people.registry import record_event
from pipeline.profiles import get_profile
from pipeline.store.db import session_scope, upgrade
from pipeline.store.models import Photo
from pipeline.tagging import batch
from pipeline.tagging.batch import process_photos
from tests import images
from tests.tagging.real_profile import RealProfile


@pytest.fixture
def photos(tmp_path: Path, data_dir: Path) -> list[int]:
    """Three registered photos (queued) and Eileen enrolled."""
    upgrade()
    a, g = images.astronaut(), images.grace_hopper()
    folder = tmp_path / "album"
    paths = [
        images.save_jpeg(a, folder / "eileen.jpg"),
        images.save_jpeg(g, folder / "grace.jpg"),
        images.save_jpeg(images.no_face(), folder / "coffee.jpg"),
    ]
    ref = images.save_jpeg(images.crop_around_face(a, images.ASTRONAUT_FACE, 0.5), tmp_path / "ref" / "eileen.jpg")
    with session_scope() as session:
        enroll(session, get_settings(), "Eileen", [ref])
    ingestor = Ingestor(sender=None)
    ids = [ingestor.file_ready(p) for p in paths]
    assert all(ids)
    return [i for i in ids if i is not None]


def _states(ids: list[int]) -> list[tuple[str, str | None]]:
    with session_scope() as session:
        rows = session.exec(select(Photo).where(Photo.id.in_(ids)).order_by(Photo.id)).all()  # type: ignore[union-attr]  # Photo.id is a column here
        return [(p.state, p.error) for p in rows]


def test_corrupt_reference_embedding_fails_every_photo_with_the_reason(photos: list[int]) -> None:
    with session_scope() as session:
        session.execute(text("UPDATE reference_images SET embedding = :b"), {"b": b"\x00\x01\x02"})
        record_event(session, "correct", None, "test: a new enrolment version, so no cached index is used")
    outcome = process_photos(photos, "task-corrupt", get_settings())
    assert sorted(outcome.failed) == sorted(photos) and not outcome.done
    for state, error in _states(photos):
        assert state == "failed"
        assert error is not None and error.startswith("could not load the enrolled people: ValueError")


class _Dropping(RealProfile):
    """The real faces profile, except that ``describe`` loses the last photo's description."""

    def describe(self, scenes: Any, questions: Any) -> Any:
        return self.real.describe(scenes, questions)[:-1]


def test_profile_returning_too_few_results_fails_the_photos(photos: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    settings = get_settings()
    dropping = _Dropping(get_profile(settings))
    monkeypatch.setattr(batch, "get_profile", lambda _settings: dropping)
    outcome = process_photos(photos, "task-short", settings)
    assert sorted(outcome.failed) == sorted(photos) and not outcome.done
    for state, error in _states(photos):
        assert state == "failed"
        assert error == "ProfileResultError: profile 'faces' returned 0 descriptions for 1"


@pytest.mark.parametrize("tried_before", [False, True])
def test_error_outside_the_guards_releases_the_claims(
    photos: list[int], monkeypatch: pytest.MonkeyPatch, tried_before: bool
) -> None:
    """A bug after claims were committed: never-tried photos (claimed together in one statement)
    and a photo tried before (claimed and run alone) go back to the queue with the reason."""
    if tried_before:  # the sweeper returned them: claimed one at a time
        with session_scope() as session:
            session.execute(text("UPDATE photos SET attempts = 1"))

    def chunk_then_break(*_args: Any) -> None:
        raise KeyError("enrolment bookkeeping")

    monkeypatch.setattr(batch, "_process_chunk", chunk_then_break)
    with pytest.raises(KeyError):
        process_photos(photos, "task-bug", get_settings())
    first = _states(photos[:1])[0]
    assert first == ("queued", "KeyError: 'enrolment bookkeeping'")  # released, not left processing
    assert all(state == "queued" for state, _error in _states(photos))
    monkeypatch.undo()
    settings = get_settings()
    with session_scope() as session:  # the last try: its failure message names the real error
        session.execute(text("UPDATE photos SET attempts = :n"), {"n": settings.max_attempts})
    process_photos(photos, "task-last", settings)
    (state, error), *_others = _states(photos)
    assert (
        state == "failed"
        and error == f"gave up after {settings.max_attempts} attempts: last error: KeyError: 'enrolment bookkeeping'"
    )


def test_release_claims_returns_a_tasks_photos(photos: list[int]) -> None:
    """What the task does at its soft time limit: photos it claimed go back to the queue."""
    settings = get_settings()
    with session_scope() as session:
        claimed = [batch.claim(session, pid, "task-slow", settings)[0] for pid in photos[:2]]
    assert all(claimed)
    assert batch.release_claims("task-slow", settings.db_url) == 2
    assert [state for state, _error in _states(photos)] == ["queued"] * 3
    assert batch.release_claims("task-slow", settings.db_url) == 0
