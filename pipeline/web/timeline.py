"""When a photo was taken, as one sortable SQL expression: ``taken_at`` (EXIF) falling back to the
file's mtime, both as seconds since the epoch (float)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Float, cast, func
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col

from pipeline.store.models import Photo


def shot_time(dialect: str) -> ColumnElement[Any]:
    """``coalesce(epoch(photos.taken_at), photos.mtime)`` for ``dialect`` (``sqlite`` or ``postgresql``).

    Not indexable on PostgreSQL (``extract`` on ``timestamptz`` depends on the session's time
    zone); queries sort one person's photos with it after an index lookup on ``faces.person_id``.
    """
    taken: ColumnElement[Any]
    if dialect == "sqlite":
        taken = cast(func.strftime("%s", col(Photo.taken_at)), Float)
    else:
        taken = func.extract("epoch", col(Photo.taken_at))
    return func.coalesce(taken, col(Photo.mtime))
