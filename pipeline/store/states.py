"""The one owner of a photo's state: the states, the work kinds and every transition between them.

Nothing else in the project writes ``photos.state``, ``photos.work`` or the claim columns.

::

    new file ──► queued ──claim──► processing ──finish──► done ──requeue_for_rematch──► queued (rematch)
                   ▲                │   │   └──fail(reason)──► failed ──retry──► queued (tag)
                   └──release───────┘   └──vanished──► missing        done ──retry──► queued (tag)
                      (soft time limit; release_orphan: the claim's worker is gone)
    any state ──retag (the file's content changed)──► queued     any state ──mark_missing──► missing
    missing ──restore (the file is back)──► done | failed | queued

Rules every transition follows:

- Each function runs its UPDATE inside the caller's transaction and does not commit: the caller
  decides when the change becomes visible (a claim must be committed before a model runs).
- Set-based transitions are guarded UPDATEs (``WHERE state = <from-state>``): rows in another
  state are left alone and not counted, because a concurrent worker, sweeper or user may have
  moved them first. The return value (a count, a bool or the ids changed) says what happened.
- A transition of one loaded row whose from-state is wrong (:func:`restore` of a photo that is
  not missing) raises :class:`IllegalTransition`: that is a bug in the caller.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import ColumnElement, CursorResult, and_, bindparam, insert, or_, update
from sqlalchemy.engine import Connection
from sqlalchemy.sql import Executable
from sqlmodel import Session, col, select

from pipeline.store.models import Photo, core_table, utcnow
from pipeline.store.state_names import PhotoState, WorkKind

__all__ = [
    "IllegalTransition",
    "PhotoState",
    "WorkKind",
    "claim",
    "claim_fresh",
    "Measured",
    "fail",
    "finish",
    "finish_many",
    "mark_missing",
    "insert_new_photos",
    "new_photo",
    "release",
    "refresh_claims",
    "release_orphan",
    "requeue_for_rematch",
    "restore",
    "retag",
    "retry",
    "take_queued_for_sending",
    "vanished",
]

MAX_ERROR_CHARS = 2000


class IllegalTransition(RuntimeError):
    """A transition was asked of a photo in a state it cannot leave that way (a caller's bug)."""

    def __init__(self, photo_id: int | None, transition: str, state: str) -> None:
        super().__init__(f"photo {photo_id}: cannot {transition} from state {state!r}")
        self.photo_id, self.transition, self.state = photo_id, transition, state


Db = Session | Connection


def _run(db: Db, statement: Executable) -> int:
    """Execute an UPDATE; rows loaded in a Session are refreshed from the database's answer
    ("fetch": Python-side evaluation would compare SQLite's naive timestamps with aware ones)."""
    statement = statement.execution_options(synchronize_session="fetch")
    result = cast("CursorResult[Any]", db.execute(statement))  # UPDATEs give a CursorResult
    return int(result.rowcount)


def _ids(db: Db, where: ColumnElement[bool]) -> list[int]:
    statement = select(col(Photo.id)).where(where).order_by(col(Photo.id))
    return [int(pid) for pid in db.execute(statement).scalars().all() if pid is not None]


def _changed_ids(db: Db, photo_ids: Iterable[int], where: ColumnElement[bool], values: dict[str, Any]) -> list[int]:
    """One UPDATE of the photos among ``photo_ids`` that match ``where``, RETURNING their ids
    (sorted): set-based transitions that must say which rows they changed, in one statement."""
    wanted = list(dict.fromkeys(photo_ids))
    if not wanted:
        return []
    table = core_table(Photo)
    statement = update(table).where(table.c.id.in_(wanted), where).values(**values).returning(table.c.id)
    return sorted(int(pid) for pid in db.execute(statement).scalars().all())


def _clip(reason: str) -> str:
    """``reason`` storable as text, at most MAX_ERROR_CHARS: a file name's undecodable bytes (Python's
    surrogate escapes, from an OS error about such a file) become ``\\udcNN``."""
    return reason.encode("utf-8", "backslashreplace").decode("utf-8")[:MAX_ERROR_CHARS]


# --- rows the ingest side loaded (one file, one row) ------------------------------------------


def new_photo(path: str, sha256: str, size: int, mtime: float, path_bytes: bytes | None = None) -> Photo:
    """A new ``queued`` photo row for a file seen for the first time (the caller adds and commits).
    ``path_bytes``: the raw name when it is not UTF-8 (see :mod:`pipeline.photos.path_text`)."""
    return Photo(
        path_bytes=path_bytes,
        path=path,
        sha256=sha256,
        size=size,
        mtime=mtime,
        state=PhotoState.QUEUED.value,
        work=WorkKind.TAG.value,
    )


def insert_new_photos(session: Session, files: list[dict[str, Any]]) -> list[int]:
    """Many new ``queued`` photo rows in one Core INSERT (a first import; the caller commits).

    Each dict holds ``path, path_bytes, sha256, size, mtime`` (and may hold ``hash_kind``);
    returns the new ids in the order of ``files``. Building SQLModel objects costs more than the
    whole INSERT for small files, hence no ORM here. One multi-row ``INSERT ... RETURNING id,
    path``; the ids are matched to ``files`` by their (unique) path, because asking the database
    to keep the order made SQLAlchemy send one INSERT per row on SQLite.
    """
    if not files:
        return []
    now = utcnow()
    fixed = {
        "state": PhotoState.QUEUED.value,
        "work": WorkKind.TAG.value,
        "hash_kind": Photo.model_fields["hash_kind"].default,  # the model's, not the old rows' server default
        "queued_at": now,
        "created_at": now,
    }
    values = [{**fixed, **f} for f in files]
    table = core_table(Photo)
    statement = insert(table).returning(table.c.id, table.c.path)
    ids = {path: int(i) for i, path in session.connection().execute(statement, values)}
    return [ids[f["path"]] for f in files]


def retag(photo: Photo, sha256: str, size: int, mtime: float) -> None:
    """The file's content changed: tag it again from scratch, from any state, fresh attempt count.

    A claim on the row is dropped, so a worker still processing the old content finds its claim
    lost and writes nothing. Changes the loaded row only (the caller adds and commits).
    """
    photo.sha256, photo.size, photo.mtime = sha256, size, mtime
    photo.state, photo.work, photo.attempts, photo.error = PhotoState.QUEUED.value, WorkKind.TAG.value, 0, None
    photo.queued_at, photo.claimed_by, photo.claimed_owner, photo.claimed_at = utcnow(), None, None, None


def restore(photo: Photo) -> PhotoState:
    """A ``missing`` file came back unchanged: ``done`` if it has results, ``failed`` if it had
    failed, else ``queued``. Other states raise :class:`IllegalTransition`. Changes the loaded
    row only (the caller adds and commits); returns the new state."""
    if photo.state != PhotoState.MISSING:
        raise IllegalTransition(photo.id, "restore", photo.state)
    if photo.model_version is not None and photo.done_at is not None:
        state = PhotoState.DONE
    elif photo.error:
        state = PhotoState.FAILED
    else:
        state = PhotoState.QUEUED
        photo.queued_at = utcnow()
    photo.state = state.value
    return state


def mark_missing(db: Db, photo_ids: Iterable[int]) -> list[int]:
    """The files are gone: every listed photo not already ``missing`` becomes ``missing`` (a claim
    on it is dropped; the worker's finish then finds nothing to finish). Results are kept.
    Returns the ids changed."""
    wanted = list(photo_ids)
    if not wanted:
        return []
    where = and_(col(Photo.id).in_(wanted), col(Photo.state) != PhotoState.MISSING.value)
    changed = _ids(db, where)
    if changed:
        _run(
            db,
            update(Photo)
            .where(col(Photo.id).in_(changed), col(Photo.state) != PhotoState.MISSING.value)
            .values(state=PhotoState.MISSING.value, claimed_by=None, claimed_owner=None),
        )
    return changed


# --- the worker's side --------------------------------------------------------------------------


def claim(db: Db, photo_id: int, task_id: str, stale_before: datetime, owner: str | None = None) -> bool:
    """Take a photo for ``task_id`` run by process ``owner`` (``host/pid/start``, see
    :mod:`pipeline.store.claim_owner`): ``queued`` → ``processing``, ``attempts + 1``.

    Also claimable: a photo already ``processing`` for this same task id (the message was
    redelivered after its worker died) or whose heartbeat is older than ``stale_before`` (its
    worker is gone). Returns False (nothing changed) for any other state.
    """
    ours_or_stale = or_(col(Photo.claimed_by) == task_id, col(Photo.claimed_at) < stale_before)
    return (
        _run(
            db,
            update(Photo)
            .where(
                col(Photo.id) == photo_id,
                or_(
                    col(Photo.state) == PhotoState.QUEUED.value,
                    and_(col(Photo.state) == PhotoState.PROCESSING.value, ours_or_stale),
                ),
            )
            .values(
                state=PhotoState.PROCESSING.value,
                attempts=col(Photo.attempts) + 1,
                claimed_by=task_id,
                claimed_owner=owner,
                claimed_at=utcnow(),
            ),
        )
        == 1
    )


def claim_fresh(db: Db, photo_ids: Iterable[int], task_id: str, owner: str | None = None) -> list[int]:
    """Take, in one UPDATE, every photo among ``photo_ids`` that is ``queued`` and was never
    tried (``attempts = 0``): ``queued`` → ``processing``, ``attempts = 1``, claimed by
    ``task_id`` run by process ``owner``. Returns the ids taken, in id order.

    A worker's batch path: photos tried before (a redelivered message, a claim the sweeper took
    back) are left alone for :func:`claim`, one at a time, so a photo that killed its worker
    runs alone and takes no other photo's attempt with it.
    """
    table = core_table(Photo)
    return _changed_ids(
        db,
        photo_ids,
        and_(table.c.state == PhotoState.QUEUED.value, table.c.attempts == 0),
        {
            "state": PhotoState.PROCESSING.value,
            "attempts": 1,
            "claimed_by": task_id,
            "claimed_owner": owner,
            "claimed_at": utcnow(),
        },
    )


def _claimed_by(photo_id: int, task_id: str) -> ColumnElement[bool]:
    return and_(
        col(Photo.id) == photo_id,
        col(Photo.state) == PhotoState.PROCESSING.value,
        col(Photo.claimed_by) == task_id,
    )


def _done(profile: str, model_version: str, enrolment_version: int | None) -> dict[str, Any]:
    """The columns a finished photo gets: ``done``, what its results were computed with, no claim."""
    return {
        "state": PhotoState.DONE.value,
        "work": WorkKind.TAG.value,
        "error": None,
        "profile": profile,
        "model_version": model_version,
        "enrolment_version": enrolment_version,
        "done_at": utcnow(),
        "claimed_by": None,
        "claimed_owner": None,
    }


def finish(
    db: Db, photo_id: int, task_id: str, *, profile: str, model_version: str, enrolment_version: int | None
) -> bool:
    """``processing`` (claimed by ``task_id``) → ``done``, recording what the results were computed
    with. Returns False, changing nothing, if the claim was lost (the caller must then not write
    results)."""
    return (
        _run(
            db,
            update(Photo)
            .where(_claimed_by(photo_id, task_id))
            .values(**_done(profile, model_version, enrolment_version)),
        )
        == 1
    )


class Measured(NamedTuple):
    """What decoding a photo found: the upright image's size in pixels and when it was taken
    (EXIF, timezone-aware UTC, or None)."""

    width: int
    height: int
    taken_at: datetime | None


def finish_many(
    db: Db,
    photo_ids: Iterable[int],
    task_id: str,
    *,
    profile: str,
    model_version: str,
    enrolment_version: int | None,
    measured: Mapping[int, Measured] | None = None,
) -> list[int]:
    """:func:`finish` for a batch in one UPDATE: every photo among ``photo_ids`` that task
    ``task_id`` still holds → ``done``; returns the ids finished, in id order (the others' claim
    was lost: the caller must not write their results). ``measured`` (photo id → size and time
    found by decoding it) is stored on the finished photos in one more statement."""
    table = core_table(Photo)
    finished = _changed_ids(
        db,
        photo_ids,
        and_(table.c.state == PhotoState.PROCESSING.value, table.c.claimed_by == task_id),
        _done(profile, model_version, enrolment_version),
    )
    facts = [
        {"photo": pid, "new_width": m.width, "new_height": m.height, "new_taken_at": m.taken_at}
        for pid in finished
        if (m := (measured or {}).get(pid)) is not None
    ]
    if facts:
        db.execute(
            update(table)
            .where(table.c.id == bindparam("photo"))
            .values(width=bindparam("new_width"), height=bindparam("new_height"), taken_at=bindparam("new_taken_at")),
            facts,
        )
    return finished


def fail(db: Db, photo_id: int, task_id: str, reason: str) -> bool:
    """``processing`` (claimed by ``task_id``) → ``failed`` with ``reason`` (clipped to 2000
    characters). Returns False, changing nothing, if the claim was lost."""
    return (
        _run(
            db,
            update(Photo)
            .where(_claimed_by(photo_id, task_id))
            .values(
                state=PhotoState.FAILED.value,
                error=_clip(reason),
                done_at=utcnow(),
                claimed_by=None,
                claimed_owner=None,
            ),
        )
        == 1
    )


def vanished(db: Db, photo_id: int, task_id: str) -> bool:
    """The worker found the file gone: ``processing`` (claimed by ``task_id``) → ``missing``.
    Returns False, changing nothing, if the claim was lost."""
    return (
        _run(
            db,
            update(Photo)
            .where(_claimed_by(photo_id, task_id))
            .values(state=PhotoState.MISSING.value, error="file no longer exists", claimed_by=None, claimed_owner=None),
        )
        == 1
    )


def release(db: Db, task_id: str, photo_ids: Iterable[int] | None = None, reason: str | None = None) -> int:
    """Give back photos ``task_id`` claimed but did not finish (all of them, or only
    ``photo_ids``): ``processing`` → ``queued`` for another try. The attempt stays counted;
    ``reason`` (what went wrong, clipped) is kept in ``error`` so the final failure can say it.
    Returns how many were released."""
    where = and_(col(Photo.state) == PhotoState.PROCESSING.value, col(Photo.claimed_by) == task_id)
    if photo_ids is not None:
        where = and_(where, col(Photo.id).in_(list(photo_ids)))
    values: dict[str, Any] = {
        "state": PhotoState.QUEUED.value,
        "claimed_by": None,
        "claimed_owner": None,
        "queued_at": utcnow(),
    }
    if reason is not None:
        values["error"] = _clip(reason)
    return _run(db, update(Photo).where(where).values(**values))


def release_orphan(db: Db, photo_id: int, task_id: str | None, queued_at: datetime) -> bool:
    """A claim whose worker is gone (the sweeper decides, :mod:`pipeline.store.claim_owner`):
    ``processing`` → ``queued`` with ``queued_at``, only if task ``task_id`` still holds it (a
    claim taken meanwhile by a live worker is left alone). Returns True if it was released."""
    same_claim = col(Photo.claimed_by) == task_id if task_id is not None else col(Photo.claimed_by).is_(None)
    return (
        _run(
            db,
            update(Photo)
            .where(col(Photo.id) == photo_id, col(Photo.state) == PhotoState.PROCESSING.value, same_claim)
            .values(state=PhotoState.QUEUED.value, claimed_by=None, claimed_owner=None, queued_at=queued_at),
        )
        == 1
    )


def refresh_claims(db: Db, owner: str) -> int:
    """Heartbeat: ``claimed_at = now`` on every photo process ``owner`` holds (``processing``).
    No state changes. Returns how many photos it holds."""
    return _run(
        db,
        update(Photo)
        .where(col(Photo.state) == PhotoState.PROCESSING.value, col(Photo.claimed_owner) == owner)
        .values(claimed_at=utcnow()),
    )


# --- users and enrolment changes ------------------------------------------------------------------


def requeue_for_rematch(db: Db, photo_ids: Iterable[int]) -> list[int]:
    """The people changed: ``done`` photos among ``photo_ids`` → ``queued`` with work ``rematch``
    (stored face embeddings against the current people; no detector runs), fresh attempt count.

    Photos already queued or processing are left alone (a worker re-checks the enrolment version
    when it finishes); failed and missing ones too. Returns the ids changed.
    """
    wanted = list(photo_ids)
    if not wanted:
        return []
    changed = _ids(db, and_(col(Photo.id).in_(wanted), col(Photo.state) == PhotoState.DONE.value))
    if changed:
        _run(
            db,
            update(Photo)
            .where(col(Photo.id).in_(changed), col(Photo.state) == PhotoState.DONE.value)
            .values(
                state=PhotoState.QUEUED.value,
                work=WorkKind.REMATCH.value,
                attempts=0,
                error=None,
                queued_at=utcnow(),
            ),
        )
    return changed


def retry(db: Db, photo_ids: Iterable[int]) -> list[int]:
    """A user asks for another try: ``failed`` or ``done`` photos → ``queued`` with work ``tag``
    and a fresh attempt count. Queued, processing and missing photos are left alone. Returns the
    ids changed."""
    wanted = list(photo_ids)
    if not wanted:
        return []
    retryable = col(Photo.state).in_((PhotoState.FAILED.value, PhotoState.DONE.value))
    changed = _ids(db, and_(col(Photo.id).in_(wanted), retryable))
    if changed:
        _run(
            db,
            update(Photo)
            .where(col(Photo.id).in_(changed), retryable)
            .values(state=PhotoState.QUEUED.value, work=WorkKind.TAG.value, attempts=0, error=None, queued_at=utcnow()),
        )
    return changed


# --- the queue's bookkeeping (no state change) ------------------------------------------------------


def take_queued_for_sending(db: Db, queued_before: datetime | None = None, now: datetime | None = None) -> list[int]:
    """Ids of ``queued`` photos to send (all, or only those queued before ``queued_before`` or
    never sent), stamping ``queued_at = now`` (default: the current time) on them. The state
    does not change."""
    where = col(Photo.state) == PhotoState.QUEUED.value
    if queued_before is not None:
        where = and_(where, or_(col(Photo.queued_at).is_(None), col(Photo.queued_at) < queued_before))
    ids = _ids(db, where)
    if ids:
        _run(db, update(Photo).where(col(Photo.id).in_(ids)).values(queued_at=now or utcnow()))
    return ids
