"""Who is enrolled: names (unique ignoring case and Unicode form), lookups, the enrolment version and its event log.

Every change to who is enrolled appends an ``enrolment_events`` row; the highest id is the
enrolment version that results are computed against.
"""

from __future__ import annotations

import unicodedata

from sqlalchemy import func
from sqlmodel import Session, col, select

from pipeline.errors import PipelineError
from pipeline.store.models import EnrolmentEvent, Face, Person, Photo, Reference
from pipeline.store.states import PhotoState


class PeopleError(PipelineError, ValueError):
    """A user-facing problem with a people command (message says what and how to fix)."""


def name_key(name: str) -> str:
    """What two names are compared by: Unicode NFC, runs of white space as one space, case folded.

    ``Zoë`` typed with a composed ``ë`` or as ``e`` + combining diaeresis, ``ZOË`` and ``zoë`` all
    give the same key, so they are one person.
    """
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", " ".join(name.split())).casefold())


def clean_name(name: str) -> str:
    """The name as stored and shown: NFC, white space collapsed; raises PeopleError for a bad one."""
    cleaned = unicodedata.normalize("NFC", " ".join(name.split()))
    if not cleaned:
        raise PeopleError("a name cannot be empty")
    if len(cleaned) > 200:
        raise PeopleError("a name can have at most 200 characters")
    if any(ch in cleaned for ch in "<>"):
        raise PeopleError("a name cannot contain '<' or '>' (they delimit names in model prompts)")
    return cleaned


def find_person(session: Session, name: str) -> Person | None:
    return session.exec(select(Person).where(Person.name_key == name_key(name))).first()


def find_or_create_person(session: Session, name: str) -> tuple[Person, bool]:
    """The person called ``name`` (ignoring case), or a new one (flushed, so it has its id);
    returns (person, created). ``name`` must already be cleaned (:func:`clean_name`)."""
    person = find_person(session, name)
    if person is not None:
        return person, False
    person = Person(name=name, name_key=name_key(name))
    session.add(person)
    session.flush()
    return person, True


def get_person(session: Session, name: str) -> Person:
    person = find_person(session, name)
    if person is None:
        known = ", ".join(p.name for p in session.exec(select(Person).order_by(Person.name)).all()) or "nobody yet"
        raise PeopleError(f"no person named {name!r} (enrolled: {known})")
    return person


def enrolment_version(session: Session) -> int:
    """The current enrolment version (0 before anyone was enrolled)."""
    latest = session.exec(select(func.max(col(EnrolmentEvent.id)))).one()
    return int(latest or 0)


def record_event(session: Session, kind: str, person_id: int | None, detail: str) -> None:
    session.add(EnrolmentEvent(kind=kind, person_id=person_id, detail=detail))


def list_people(session: Session) -> list[dict[str, object]]:
    """Each person with reference and photo counts, ordered by name."""
    refs = dict(session.exec(select(col(Reference.person_id), func.count()).group_by(col(Reference.person_id))).all())
    photos = dict(
        session.exec(
            select(col(Face.person_id), func.count(func.distinct(col(Face.photo_id))))
            .join(Photo, col(Photo.id) == col(Face.photo_id))
            .where(col(Photo.state) != PhotoState.MISSING.value)
            .group_by(col(Face.person_id))
        ).all()
    )
    return [
        {
            "id": p.id,
            "name": p.name,
            "references": refs.get(p.id or 0, 0),
            "photos": photos.get(p.id or 0, 0),
            "enrolled": p.created_at,
        }
        for p in session.exec(select(Person).order_by(Person.name_key)).all()
    ]
