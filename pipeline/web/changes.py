"""The web app's writes, each one transaction through the same functions as the CLI
(:mod:`pipeline.people.changes`, :mod:`pipeline.people.enrolment`, :mod:`pipeline.ingest.retry`);
re-queued photos are sent to the workers afterwards, as the CLI does, so captions are redone."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlmodel import Session

from pipeline.config import Settings
from pipeline.errors import PipelineError


class NotFound(PipelineError, LookupError):
    """A URL's id names no row (deleted, merged, or never existed)."""

    http_status = 404


@dataclass(frozen=True)
class Applied:
    """What a change did: the photos it re-queued, and whether they reached the workers now
    (False: no broker is running; they stay queued for the next ``pipeline run``)."""

    requeued: list[int]
    sent: bool

    def summary(self) -> str:
        """What happens next, for the page ("" when nothing was re-queued)."""
        if not self.requeued:
            return ""
        how = "sent to the workers; captions follow in a few seconds" if self.sent else "queued for `pipeline run`"
        return f"{len(self.requeued)} photo(s) to re-tag ({how})"


def apply(settings: Settings, change: Callable[[Session], list[int]]) -> Applied:
    """Run ``change`` in one committed transaction, then send the photos it re-queued."""
    from pipeline.ingest.dispatch import send_requeued
    from pipeline.store.db import session_scope

    with session_scope(settings.db_url) as session:
        ids = change(session)
    return Applied(ids, send_requeued(settings, ids) if ids else False)


def person_name(session: Session, person_id: int) -> str:
    from pipeline.store.models import Person

    person = session.get(Person, person_id)
    if person is None:
        raise NotFound(f"no person with id {person_id} (forgotten or merged?)")
    return person.name


def name_face(session: Session, settings: Settings, face_id: int, name: str) -> list[int]:
    """ "This face is NAME": ``pipeline correct FACE --name NAME`` for an enrolled name; a new name
    becomes a person whose first reference is this face (``pipeline correct FACE --name NAME
    --reference``, the way ``pipeline clusters name`` starts a person from faces: the stored
    embedding, no detector run)."""
    from pipeline.people.changes import correct_face
    from pipeline.people.references import correct_as_reference
    from pipeline.people.registry import clean_name, find_or_create_person
    from pipeline.store.models import Face

    if session.get(Face, face_id) is None:
        raise NotFound(f"no face with id {face_id} (the photo was re-tagged?)")
    person, created = find_or_create_person(session, clean_name(name))
    if created:
        return correct_as_reference(session, settings, face_id, person.name)
    return correct_face(session, face_id, name=person.name)


def face_not(session: Session, face_id: int, name: str) -> list[int]:
    """ "This face is not NAME" (``pipeline correct FACE --not NAME``)."""
    from pipeline.people.changes import correct_face

    return correct_face(session, face_id, not_name=name)


def face_unknown(session: Session, face_id: int) -> list[int]:
    """ "Unknown": the face is not the person it is named for now (nothing to do when unnamed)."""
    from pipeline.people.changes import correct_face
    from pipeline.store.models import Face, Person

    face = session.get(Face, face_id)
    if face is None:
        raise NotFound(f"no face with id {face_id} (the photo was re-tagged?)")
    person = session.get(Person, face.person_id) if face.person_id is not None else None
    return correct_face(session, face_id, not_name=person.name) if person is not None else []
