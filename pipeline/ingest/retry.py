"""Trying failed photos again: the one function behind ``pipeline retry`` and the web app's retry button."""

from __future__ import annotations

from sqlalchemy import ColumnElement, update
from sqlmodel import Session, col, select

from pipeline.errors import PipelineError
from pipeline.photos.path_text import path_text
from pipeline.store.models import Photo, utcnow


class NothingToRetry(PipelineError, LookupError):
    """No photo matched what the user asked to retry."""


def retry_photos(session: Session, photo_id: int | None = None, path: str | None = None) -> list[int]:
    """Queue photos again with a fresh attempt count (not committed); returns their ids.

    No argument: every ``failed`` photo. ``photo_id`` or ``path``: that one photo, whatever its state.
    Raises :class:`NothingToRetry` when nothing matches.
    """
    where: ColumnElement[bool]
    if photo_id is not None:
        where, what = col(Photo.id) == photo_id, f"photo {photo_id}"
    elif path is not None:
        text = path_text(path)[0]
        where, what = col(Photo.path) == text, repr(text)
    else:
        where, what = col(Photo.state) == "failed", "failed photos (there are none)"
    ids = [pid for pid in session.exec(select(col(Photo.id)).where(where)).all() if pid is not None]
    if not ids:
        raise NothingToRetry(f"nothing to retry for {what}")
    session.execute(
        update(Photo)
        .where(col(Photo.id).in_(ids))
        .values(state="queued", work="tag", attempts=0, error=None, queued_at=utcnow())
    )
    return ids
