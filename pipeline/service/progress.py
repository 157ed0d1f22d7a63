"""Terminal progress for ``pipeline run``: a line per finished photo and running counts."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, col, select

from pipeline.store.models import Caption, Face, Person, Photo
from pipeline.store.states import PhotoState


def state_counts(session: Session) -> dict[str, int]:
    """Photos per state (every state present, zeros included)."""
    counts = {state.value: 0 for state in PhotoState}
    for state, n in session.exec(select(Photo.state, func.count()).group_by(Photo.state)).all():
        counts[state] = int(n)
    return counts


def photo_line(session: Session, photo: Photo) -> str:
    """One human line for a finished photo."""
    if photo.state == PhotoState.FAILED:
        return f"failed  {photo.path}: {photo.error}"
    names = session.exec(
        select(col(Person.name))
        .join(Face, col(Face.person_id) == col(Person.id))
        .where(col(Face.photo_id) == photo.id)
        .order_by(col(Face.x))
    ).all()
    caption = session.exec(
        select(Caption.text).where(Caption.photo_id == photo.id, Caption.model_version == photo.model_version)
    ).first()
    who = ", ".join(names) if names else "-"
    return f"done    {photo.path}  [{who}]  {caption or ''}"


class ProgressReporter:
    """Polls the database; reports photos finished since the last poll."""

    def __init__(self, db_url: str | None, report: Callable[[str], None], counts_every: float = 5.0) -> None:
        from pipeline.store.db import get_engine

        self.engine = get_engine(db_url)
        self.report = report
        self.counts_every = counts_every
        self._last_counts = 0.0
        self._last_text = ""
        with Session(self.engine) as session:
            self._watermark: datetime | None = session.exec(select(func.max(col(Photo.done_at)))).one()
            self._seen_at_watermark: set[int] = set()
            if self._watermark is not None:
                at_watermark = select(col(Photo.id)).where(col(Photo.done_at) == self._watermark)
                self._seen_at_watermark = {pid for pid in session.exec(at_watermark).all() if pid is not None}

    def poll(self) -> bool:
        """Report news; returns True while photos are queued or processing."""
        with Session(self.engine) as session:
            query = select(Photo).where(
                col(Photo.state).in_((PhotoState.DONE.value, PhotoState.FAILED.value)), col(Photo.done_at).is_not(None)
            )
            if self._watermark is not None:
                query = query.where(col(Photo.done_at) >= self._watermark)
            for photo in session.exec(query.order_by(col(Photo.done_at), col(Photo.id))).all():
                assert photo.id is not None  # rows read from the database have their id
                if photo.done_at == self._watermark and photo.id in self._seen_at_watermark:
                    continue
                if photo.done_at != self._watermark:
                    self._watermark, self._seen_at_watermark = photo.done_at, set()
                self._seen_at_watermark.add(photo.id)
                self.report(photo_line(session, photo))
            counts = state_counts(session)
        text = self._counts_text(counts)
        now = time.monotonic()
        if text != self._last_text and now - self._last_counts >= self.counts_every:
            self.report(text)
            self._last_text, self._last_counts = text, now
        return counts[PhotoState.QUEUED] + counts[PhotoState.PROCESSING] > 0

    @staticmethod
    def _counts_text(counts: dict[str, int]) -> str:
        return "photos: " + "  ".join(f"{k} {v}" for k, v in counts.items())

    def summary(self) -> str:
        with Session(self.engine) as session:
            return self._counts_text(state_counts(session))
