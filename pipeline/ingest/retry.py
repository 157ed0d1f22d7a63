"""Trying failed photos again: the one function behind ``pipeline retry`` and the web app's retry button."""

from __future__ import annotations

from sqlalchemy import ColumnElement
from sqlmodel import Session, col, select

from pipeline.errors import PipelineError
from pipeline.photos.path_text import path_text
from pipeline.store import states
from pipeline.store.models import Photo
from pipeline.store.states import PhotoState


class NothingToRetry(PipelineError, LookupError):
    """No photo matched what the user asked to retry."""


def retry_photos(session: Session, photo_id: int | None = None, path: str | None = None) -> list[int]:
    """Queue photos again with a fresh attempt count (not committed); returns their ids.

    No argument: every ``failed`` photo. ``photo_id`` or ``path``: that one photo when it is
    ``failed`` or ``done`` (:func:`pipeline.store.states.retry`; a queued or processing photo is
    already on its way, a missing one has no file). Raises :class:`NothingToRetry` when nothing
    matches.
    """
    where: ColumnElement[bool]
    if photo_id is not None:
        where, what = col(Photo.id) == photo_id, f"photo {photo_id}"
    elif path is not None:
        text = path_text(path)[0]
        where, what = col(Photo.path) == text, repr(text)
    else:
        where, what = col(Photo.state) == PhotoState.FAILED.value, "failed photos (there are none)"
    rows = session.exec(select(col(Photo.id), col(Photo.state)).where(where)).all()
    if not rows:
        raise NothingToRetry(f"nothing to retry for {what}")
    ids = states.retry(session, [pid for pid, _state in rows if pid is not None])
    if not ids:
        raise NothingToRetry(
            f"nothing to retry for {what}: it is {rows[0][1]} (only failed or done photos are retried)"
        )
    return ids
