"""Every transition of pipeline.store.states, legal and illegal, on SQLite and PostgreSQL, and the
CHECK constraints the migration adds."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session

from pipeline.store import db, states
from pipeline.store.models import Photo, utcnow
from pipeline.store.states import IllegalTransition, PhotoState, WorkKind
from tests.conftest import POSTGRES_URL

ALL = list(PhotoState)
_paths = itertools.count()


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One migrated database per dialect for the whole module (each test empties ``photos``)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('states') / 'states.db'}"
    else:
        url = POSTGRES_URL
        try:
            with create_engine(url).begin() as conn:
                conn.execute(text("DROP SCHEMA public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
        except OperationalError as exc:  # pragma: no cover
            if os.environ.get("CI"):
                raise
            pytest.skip(f"PostgreSQL not reachable: {exc}")
    db.upgrade(url)
    yield url
    db.dispose_engines()


@pytest.fixture
def session(db_url: str) -> Iterator[Session]:
    with Session(db.get_engine(db_url), expire_on_commit=False) as s:
        yield s
        s.rollback()
        s.execute(text("DELETE FROM photos"))
        s.commit()


def _photo(session: Session, state: PhotoState, **fields: object) -> Photo:
    """A committed row in ``state`` (set up through the transitions, as production code does)."""
    photo = states.new_photo(f"/album/{next(_paths)}.jpg", "0" * 64, 1, 1.0)
    session.add(photo)
    session.commit()
    assert photo.id is not None
    if state is not PhotoState.QUEUED:
        assert states.claim(session, photo.id, "t0", utcnow())
    if state is PhotoState.DONE:
        assert states.finish(session, photo.id, "t0", profile="faces", model_version="m", enrolment_version=1)
    elif state is PhotoState.FAILED:
        assert states.fail(session, photo.id, "t0", "broken")
    elif state is PhotoState.MISSING:
        assert states.mark_missing(session, [photo.id]) == [photo.id]
    for key, value in fields.items():
        setattr(photo, key, value)
    session.add(photo)
    session.commit()
    session.refresh(photo)
    assert photo.state == state
    return photo


def _reload(session: Session, photo: Photo) -> Photo:
    session.commit()
    session.refresh(photo)
    return photo


def _aware(value: datetime | None) -> datetime:
    """SQLite hands timestamps back naive (they were written in UTC)."""
    assert value is not None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _id(photo: Photo) -> int:
    assert photo.id is not None
    return photo.id


def test_new_photo_is_queued_for_tagging(session: Session) -> None:
    photo = _photo(session, PhotoState.QUEUED)
    assert (photo.state, photo.work, photo.attempts) == ("queued", "tag", 0)


@pytest.mark.parametrize("start", ALL)
def test_claim_only_from_queued(session: Session, start: PhotoState) -> None:
    photo = _photo(session, start)
    before = photo.attempts
    claimed = states.claim(session, _id(photo), "t1", utcnow() - timedelta(hours=1))
    _reload(session, photo)
    if start is PhotoState.QUEUED:
        assert claimed and photo.state == "processing" and photo.claimed_by == "t1"
        assert photo.attempts == before + 1 and photo.claimed_at is not None
    else:  # processing by another task, not stale: not ours
        assert not claimed and photo.state == start and photo.attempts == before


def test_claim_again_by_same_task_or_when_stale(session: Session) -> None:
    photo = _photo(session, PhotoState.PROCESSING)  # claimed by t0
    assert states.claim(session, _id(photo), "t0", utcnow() - timedelta(hours=1))  # redelivered to t0
    assert _reload(session, photo).attempts == 2
    assert not states.claim(session, _id(photo), "t2", utcnow() - timedelta(hours=1))
    assert states.claim(session, _id(photo), "t2", utcnow() + timedelta(seconds=1))  # t0's claim is stale
    assert _reload(session, photo).claimed_by == "t2" and photo.attempts == 3


@pytest.mark.parametrize("start", ALL)
def test_finish_fail_vanish_need_own_claim(session: Session, start: PhotoState) -> None:
    for transition in ("finish", "fail", "vanished"):
        photo = _photo(session, start)
        pid = _id(photo)
        if transition == "finish":
            ok = states.finish(session, pid, "t0", profile="faces", model_version="v2", enrolment_version=7)
        elif transition == "fail":
            ok = states.fail(session, pid, "t0", "x" * 3000)
        else:
            ok = states.vanished(session, pid, "t0")
        _reload(session, photo)
        if start is not PhotoState.PROCESSING:
            assert not ok and photo.state == start
            continue
        assert ok and photo.claimed_by is None
        if transition == "finish":
            assert (photo.state, photo.work, photo.model_version, photo.enrolment_version) == ("done", "tag", "v2", 7)
            assert photo.error is None and photo.done_at is not None
        elif transition == "fail":
            assert photo.state == "failed" and photo.error == "x" * 2000 and photo.done_at is not None
        else:
            assert photo.state == "missing" and photo.error == "file no longer exists"


def test_finish_by_another_task_changes_nothing(session: Session) -> None:
    photo = _photo(session, PhotoState.PROCESSING)
    assert not states.finish(session, _id(photo), "other", profile="faces", model_version="v", enrolment_version=1)
    assert not states.fail(session, _id(photo), "other", "no")
    assert not states.vanished(session, _id(photo), "other")
    assert _reload(session, photo).state == "processing" and photo.claimed_by == "t0"


@pytest.mark.parametrize("start", ALL)
def test_release_returns_only_own_processing(session: Session, start: PhotoState) -> None:
    photo = _photo(session, start)
    mine = _photo(session, PhotoState.PROCESSING, claimed_by="mine", claimed_owner="host/5/6")
    released = states.release(session, "t0")
    _reload(session, photo)
    assert released == (1 if start is PhotoState.PROCESSING else 0)
    assert photo.state == ("queued" if start is PhotoState.PROCESSING else start)
    assert _reload(session, mine).state == "processing"
    assert states.release(session, "mine", photo_ids=[_id(photo)]) == 0  # restricted to these ids
    assert states.release(session, "mine", photo_ids=[_id(mine)]) == 1
    assert _reload(session, mine).state == "queued" and mine.claimed_by is None and mine.attempts == 1
    assert mine.claimed_owner is None


@pytest.mark.parametrize("start", ALL)
def test_release_orphan_only_the_same_claim(session: Session, start: PhotoState) -> None:
    photo = _photo(session, start)
    stamp = utcnow() - timedelta(minutes=5)
    assert not states.release_orphan(session, _id(photo), "another-task", queued_at=stamp)
    released = states.release_orphan(session, _id(photo), "t0", queued_at=stamp)
    _reload(session, photo)
    if start is PhotoState.PROCESSING:
        assert released and photo.state == "queued" and photo.claimed_by is None and photo.claimed_owner is None
        assert _aware(photo.queued_at) == stamp
    else:
        assert not released and photo.state == start


def test_claim_records_the_owner_and_heartbeat_refreshes_it(session: Session) -> None:
    photo = _photo(session, PhotoState.QUEUED)
    other = _photo(session, PhotoState.QUEUED)
    assert states.claim(session, _id(photo), "t1", utcnow(), owner="host/1/2")
    assert states.claim(session, _id(other), "t2", utcnow(), owner="host/3/4")
    session.execute(text("UPDATE photos SET claimed_at = NULL"))
    assert states.refresh_claims(session, "host/1/2") == 1
    assert _reload(session, photo).claimed_owner == "host/1/2" and photo.claimed_at is not None
    assert _reload(session, other).claimed_at is None
    assert states.fail(session, _id(photo), "t1", "x")
    assert _reload(session, photo).claimed_owner is None
    assert states.refresh_claims(session, "host/1/2") == 0


@pytest.mark.parametrize("start", ALL)
def test_requeue_for_rematch_only_done(session: Session, start: PhotoState) -> None:
    photo = _photo(session, start)
    changed = states.requeue_for_rematch(session, [_id(photo), 999_999])
    _reload(session, photo)
    if start is PhotoState.DONE:
        assert changed == [photo.id]
        assert (photo.state, photo.work, photo.attempts, photo.error) == ("queued", "rematch", 0, None)
    else:
        assert changed == [] and photo.state == start
    assert states.requeue_for_rematch(session, []) == []


@pytest.mark.parametrize("start", ALL)
def test_retry_only_failed_or_done(session: Session, start: PhotoState) -> None:
    photo = _photo(session, start, work=WorkKind.REMATCH.value)
    changed = states.retry(session, [_id(photo)])
    _reload(session, photo)
    if start in (PhotoState.FAILED, PhotoState.DONE):
        assert changed == [photo.id]
        assert (photo.state, photo.work, photo.attempts, photo.error) == ("queued", "tag", 0, None)
    else:
        assert changed == [] and photo.state == start


@pytest.mark.parametrize("start", ALL)
def test_mark_missing_from_any_state(session: Session, start: PhotoState) -> None:
    photo = _photo(session, start)
    changed = states.mark_missing(session, [_id(photo)])
    _reload(session, photo)
    assert photo.state == "missing" and photo.claimed_by is None
    assert changed == ([] if start is PhotoState.MISSING else [photo.id])


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"model_version": "m"}, "done"),  # had results (done_at set by finish)
        ({"model_version": None, "done_at": None, "error": "bad"}, "failed"),
        ({"model_version": None, "done_at": None, "error": None}, "queued"),
    ],
)
def test_restore_a_missing_photo(session: Session, fields: dict[str, object], expected: str) -> None:
    photo = _photo(session, PhotoState.DONE)
    assert states.mark_missing(session, [_id(photo)])
    _reload(session, photo)
    for key, value in fields.items():
        setattr(photo, key, value)
    assert states.restore(photo) == expected
    session.add(photo)
    assert _reload(session, photo).state == expected


@pytest.mark.parametrize("start", [s for s in ALL if s is not PhotoState.MISSING])
def test_restore_from_other_states_is_illegal(session: Session, start: PhotoState) -> None:
    photo = _photo(session, start)
    with pytest.raises(IllegalTransition, match=f"cannot restore from state '{start}'"):
        states.restore(photo)


@pytest.mark.parametrize("start", ALL)
def test_retag_from_any_state_drops_the_claim(session: Session, start: PhotoState) -> None:
    photo = _photo(session, start)
    states.retag(photo, "1" * 64, 2, 2.0)
    session.add(photo)
    _reload(session, photo)
    assert (photo.state, photo.work, photo.attempts, photo.sha256, photo.claimed_by) == (
        "queued",
        "tag",
        0,
        "1" * 64,
        None,
    )
    assert not states.finish(session, _id(photo), "t0", profile="faces", model_version="m", enrolment_version=1)


def test_take_queued_for_sending(session: Session) -> None:
    old = _photo(session, PhotoState.QUEUED, queued_at=utcnow() - timedelta(hours=1))
    new = _photo(session, PhotoState.QUEUED)
    _photo(session, PhotoState.DONE, queued_at=utcnow() - timedelta(hours=1))
    assert states.take_queued_for_sending(session, queued_before=utcnow() - timedelta(minutes=1)) == [old.id]
    assert _aware(_reload(session, old).queued_at) > utcnow() - timedelta(minutes=1)
    assert states.take_queued_for_sending(session) == [old.id, new.id]


@pytest.mark.parametrize(("column", "value"), [("state", "bogus"), ("work", "paint")])
def test_check_constraints_refuse_unknown_values(session: Session, column: str, value: str) -> None:
    photo = _photo(session, PhotoState.QUEUED)
    with pytest.raises(IntegrityError):
        session.execute(text(f"UPDATE photos SET {column} = :v WHERE id = :id"), {"v": value, "id": photo.id})
        session.commit()
    session.rollback()


def test_claim_fresh_takes_only_never_tried_queued_photos_in_one_statement(session: Session) -> None:
    fresh = [_photo(session, PhotoState.QUEUED) for _ in range(3)]
    tried = _photo(session, PhotoState.QUEUED, attempts=1)  # returned by the sweeper: claimed alone
    others = [_photo(session, start) for start in ALL if start is not PhotoState.QUEUED]
    wanted = [_id(p) for p in [*reversed(fresh), tried, *others]] + [999_999]
    taken = states.claim_fresh(session, wanted, "t1", owner="host/1/2")
    assert taken == sorted(_id(p) for p in fresh)
    for photo in fresh:
        _reload(session, photo)
        assert (photo.state, photo.attempts, photo.claimed_by, photo.claimed_owner) == (
            "processing",
            1,
            "t1",
            "host/1/2",
        )
        assert photo.claimed_at is not None
    assert (_reload(session, tried).state, tried.attempts) == ("queued", 1)
    for photo, start in zip(others, [s for s in ALL if s is not PhotoState.QUEUED], strict=True):
        assert _reload(session, photo).state == start and photo.claimed_by != "t1"
    assert states.claim_fresh(session, wanted, "t2") == []  # taken already: nothing changes
    assert states.claim_fresh(session, [], "t2") == []


def test_finish_many_finishes_only_own_claims_and_stores_what_decoding_found(session: Session) -> None:
    mine = [_photo(session, PhotoState.PROCESSING) for _ in range(3)]  # claimed by t0
    other = _photo(session, PhotoState.PROCESSING, claimed_by="t9")
    queued = _photo(session, PhotoState.QUEUED)
    taken = datetime(2020, 5, 17, 10, 30, tzinfo=UTC)
    measured = {_id(mine[0]): states.Measured(640, 480, taken), _id(mine[1]): states.Measured(320, 200, None)}
    measured[_id(other)] = states.Measured(1, 1, None)
    finished = states.finish_many(
        session,
        [_id(p) for p in [*mine, other, queued]],
        "t0",
        profile="faces",
        model_version="v3",
        enrolment_version=4,
        measured=measured,
    )
    assert finished == sorted(_id(p) for p in mine)
    for photo in mine:
        _reload(session, photo)
        assert (photo.state, photo.work, photo.model_version, photo.enrolment_version, photo.claimed_by) == (
            "done",
            "tag",
            "v3",
            4,
            None,
        )
        assert photo.claimed_owner is None and photo.done_at is not None and photo.error is None
    assert (mine[0].width, mine[0].height, _aware(mine[0].taken_at)) == (640, 480, taken)
    assert (mine[1].width, mine[1].height, mine[1].taken_at) == (320, 200, None)
    assert mine[2].width is None  # nothing measured: left as it was
    assert (_reload(session, other).state, other.width) == ("processing", None)  # another task's claim
    assert _reload(session, queued).state == "queued"
    assert (
        states.finish_many(session, [_id(p) for p in mine], "t0", profile="f", model_version="v", enrolment_version=1)
        == []
    )
