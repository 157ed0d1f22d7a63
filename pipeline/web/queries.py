"""What the web pages show, read on the read-only connection. Every function takes a read-only
:class:`~sqlalchemy.engine.Connection` and returns plain dataclasses (no ORM objects escape)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, func, select
from sqlmodel import col

from pipeline.store.models import Answer, Caption, Face, Person, Photo, Reference
from pipeline.store.states import PhotoState
from pipeline.web.timeline import shot_time


@dataclass
class PersonCard:
    """One row of the People page; ``last_seen``: when their newest photo was taken (None: no photo)."""

    id: int
    name: str
    photos: int
    last_seen: datetime | None
    reference_id: int | None


@dataclass
class FaceBox:
    """A face on a photo: box relative to the EXIF-rotated image (x, y, w, h in [0, 1])."""

    id: int
    idx: int
    x: float
    y: float
    w: float
    h: float
    person_id: int | None
    person_name: str | None
    score: float | None
    user_set: bool
    rejected: list[str]


@dataclass
class PhotoCard:
    """A photo in a grid; ``face_id``: the face to highlight (the person's face) or None."""

    id: int
    name: str
    shot: datetime | None
    face_id: int | None = None
    caption: str | None = None
    box: tuple[float, float, float, float] | None = None
    """The face's box (x, y, w, h relative to the picture), drawn over the thumbnail."""


@dataclass
class PhotoDetail:
    id: int
    name: str
    state: str
    error: str | None
    width: int | None
    height: int | None
    shot: datetime
    sha256: str
    faces: list[FaceBox]
    caption: str | None
    answers: list[tuple[str, str]]


def epoch_time(seconds: Any) -> datetime:
    """Seconds since the epoch (None: 0) as an aware UTC datetime."""
    return datetime.fromtimestamp(float(seconds or 0), UTC)


def file_name(path: str) -> str:
    """The last part of a stored path: what a page shows instead of the path itself."""
    return path.replace("\\", "/").rsplit("/", 1)[-1]


def people_cards(conn: Connection) -> list[PersonCard]:
    """Every person, by name, with photo count, last seen and a reference to show as their face.

    Counts and times come from ``faces (person_id, photo_time, photo_id)`` alone (``photo_time``
    is NULL for faces of missing photos), so this reads no photo row. The count is of the
    person's faces: the model names a person at most once per photo, so it is their photo count
    unless a user named two faces of one photo as the same person (that photo counts twice;
    counting distinct photos would cost a sort of every face, 300 ms at 300,000 faces).
    """
    stats = {
        row[0]: (int(row[1]), row[2])
        for row in conn.execute(
            select(col(Face.person_id), func.count(), func.max(col(Face.photo_time)))
            .where(col(Face.person_id).is_not(None), col(Face.photo_time).is_not(None))
            .group_by(col(Face.person_id))
        ).all()
    }
    refs = dict(
        conn.execute(select(col(Reference.person_id), func.min(col(Reference.id))).group_by(col(Reference.person_id)))
        .tuples()
        .all()
    )
    cards = []
    everyone = conn.execute(select(col(Person.id), col(Person.name)).order_by(col(Person.name_key))).tuples().all()
    for pid, name in everyone:
        if pid is None:  # never: a primary key; keeps the type checker sure
            continue
        count, last = stats.get(pid, (0, None))
        cards.append(PersonCard(pid, name, count, epoch_time(last) if last is not None else None, refs.get(pid)))
    return cards


def person_name(conn: Connection, person_id: int) -> str | None:
    return conn.execute(select(col(Person.name)).where(col(Person.id) == person_id)).scalar_one_or_none()


def _faces_page(
    conn: Connection, which: ColumnElement[bool], newest_first: Any, offset: int, limit: int
) -> tuple[list[PhotoCard], int]:
    """One page of the faces matching ``which`` (faces of missing photos left out: their
    ``photo_time`` is NULL) with their photos, in ``newest_first`` order, and how many in all."""
    visible = (which, col(Face.photo_time).is_not(None))
    rows = conn.execute(
        select(
            col(Face.photo_id),
            col(Photo.path),
            col(Face.photo_time),
            col(Face.id),
            col(Face.x),
            col(Face.y),
            col(Face.w),
            col(Face.h),
        )
        .join(Photo, col(Photo.id) == col(Face.photo_id))
        .where(*visible)
        .order_by(newest_first, col(Face.photo_id).desc())
        .offset(offset)
        .limit(limit)
    ).all()
    total = conn.execute(select(func.count()).select_from(Face).where(*visible)).scalar_one()
    cards = [
        PhotoCard(r[0], file_name(r[1]), epoch_time(r[2]), face_id=r[3], box=(r[4], r[5], r[6], r[7])) for r in rows
    ]
    return cards, int(total)


def person_photos(conn: Connection, person_id: int, offset: int, limit: int) -> tuple[list[PhotoCard], int]:
    """One page of a person's photos, newest first (taken_at, else mtime), and how many there are:
    a walk of the index ``faces (person_id, photo_time, photo_id)`` that stops after the page."""
    return _faces_page(conn, col(Face.person_id) == person_id, col(Face.photo_time).desc(), offset, limit)


def photo_detail(conn: Connection, photo_id: int) -> PhotoDetail | None:
    """Everything the Photo page shows, or None when no such photo row exists."""
    shot = shot_time(conn.dialect.name)
    row = conn.execute(
        select(
            col(Photo.id),
            col(Photo.path),
            col(Photo.state),
            col(Photo.error),
            col(Photo.width),
            col(Photo.height),
            shot,
            col(Photo.sha256),
            col(Photo.model_version),
        ).where(col(Photo.id) == photo_id)
    ).first()
    if row is None:
        return None
    names = dict(conn.execute(select(col(Person.id), col(Person.name))).tuples().all())
    faces = [
        FaceBox(
            f.id,
            f.idx,
            f.x,
            f.y,
            f.w,
            f.h,
            f.person_id,
            names.get(f.person_id) if f.person_id else None,
            f.match_score,
            bool(f.user_set),
            [names[int(x)] for x in (f.rejected_person_ids or "").split(",") if x and int(x) in names],
        )
        for f in conn.execute(select(Face).where(col(Face.photo_id) == photo_id).order_by(col(Face.idx))).all()
    ]
    caption = conn.execute(
        select(col(Caption.text)).where(col(Caption.photo_id) == photo_id, col(Caption.model_version) == row[8])
    ).scalar_one_or_none()
    answers = conn.execute(
        select(col(Answer.question), col(Answer.text))
        .where(col(Answer.photo_id) == photo_id, col(Answer.model_version) == row[8])
        .order_by(col(Answer.id))
    ).all()
    return PhotoDetail(
        row[0],
        file_name(row[1]),
        row[2],
        row[3],
        row[4],
        row[5],
        epoch_time(row[6]),
        row[7],
        faces,
        caption,
        [(q, a) for q, a in answers],
    )


def unknown_faces(
    conn: Connection, offset: int, limit: int, hidden_clusters: list[int] | None = None
) -> tuple[list[PhotoCard], int]:
    """Faces nobody is named for, newest first (most recently detected), and how many there are;
    faces of ``hidden_clusters`` (strangers) are left out."""
    which: ColumnElement[bool] = col(Face.person_id).is_(None)
    if hidden_clusters:
        which = which & (col(Face.cluster_id).is_(None) | col(Face.cluster_id).not_in(hidden_clusters))
    return _faces_page(conn, which, col(Face.id).desc(), offset, limit)


def people_names(conn: Connection) -> list[str]:
    """Every enrolled name, for the autocomplete list."""
    return list(conn.execute(select(col(Person.name)).order_by(col(Person.name_key))).scalars().all())


def person_named(conn: Connection, text: str) -> int | None:
    """The id of the person whose name is ``text`` (ignoring case and spacing), or None."""
    from pipeline.people.registry import name_key

    return conn.execute(select(col(Person.id)).where(col(Person.name_key) == name_key(text))).scalar_one_or_none()


def failures(conn: Connection, limit: int) -> list[tuple[int, str, str | None, int]]:
    """The most recent failed photos: (id, file name, reason, attempts)."""
    rows = conn.execute(
        select(col(Photo.id), col(Photo.path), col(Photo.error), col(Photo.attempts))
        .where(col(Photo.state) == PhotoState.FAILED.value)
        .order_by(col(Photo.done_at).desc(), col(Photo.id).desc())
        .limit(limit)
    ).all()
    return [(int(r[0] or 0), file_name(r[1]), r[2], int(r[3])) for r in rows]


def state_counts(conn: Connection) -> dict[str, int]:
    """Photos per state, every state present (zeros included): the same count as ``pipeline status``."""
    from sqlmodel import Session

    from pipeline.service.progress import state_counts as count_states

    with Session(bind=conn) as session:
        return count_states(session)
