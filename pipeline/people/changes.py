"""Changes to enrolled people: rename, merge, forget, a user's correction of one face, and the
selective re-queue they all share (only photos whose faces could change are re-matched, from the
stored face embeddings: no detector runs again).
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, or_, update
from sqlmodel import Session, col, select

from pipeline.people.registry import PeopleError, clean_name, find_person, get_person, name_key, record_event
from pipeline.store import states
from pipeline.store.models import Concept, Face, PersonScore, Photo, Reference
from pipeline.store.states import PhotoState


def requeue_affected(session: Session, person_ids: set[int], include_unknown: bool) -> list[int]:
    """Mark done photos whose faces could change for re-matching; return their ids.

    Affected: photos with a face of one of ``person_ids``, plus (``include_unknown``) photos with
    an unknown face that no user has set. Photos already queued or processing are left alone (a
    worker re-checks the enrolment version when it finishes).
    """
    conditions: list[ColumnElement[bool]] = [col(Face.person_id).in_(person_ids)] if person_ids else []
    if include_unknown:
        conditions.append(col(Face.person_id).is_(None) & col(Face.user_set).is_(False))
    if not conditions:
        return []
    return requeue_photos(session, set(session.exec(select(Face.photo_id).where(or_(*conditions))).all()))


def requeue_photos(session: Session, photo_ids: set[int]) -> list[int]:
    """Mark these photos, when done, for re-matching (``queued``, ``work = rematch``); returns the
    ids now queued among them (photos already queued or processing are left alone: a worker
    re-checks the enrolment version when it finishes)."""
    if not photo_ids:
        return []
    states.requeue_for_rematch(session, sorted(photo_ids))
    query = (
        select(col(Photo.id))
        .where(col(Photo.id).in_(sorted(photo_ids)), col(Photo.state) == PhotoState.QUEUED.value)
        .order_by(col(Photo.id))
    )
    return [pid for pid in session.exec(query).all() if pid is not None]


def rename(session: Session, old: str, new: str) -> list[int]:
    """Rename a person; captions that use the name are redone. Returns re-queued photo ids."""
    person = get_person(session, old)
    new = clean_name(new)
    other = find_person(session, new)
    if other is not None and other.id != person.id:
        raise PeopleError(f"{other.name!r} already exists; use `pipeline people merge {person.name!r} {other.name!r}`")
    person.name, person.name_key = new, name_key(new)
    session.add(person)
    record_event(session, "rename", person.id, f"{old} -> {new}")
    session.flush()
    assert person.id is not None
    return requeue_affected(session, {person.id}, include_unknown=False)


def merge(session: Session, source: str, target: str) -> list[int]:
    """Move ``source``'s references and faces to ``target`` and delete ``source``."""
    src, dst = get_person(session, source), get_person(session, target)
    if src.id == dst.id:
        raise PeopleError("cannot merge a person into themselves")
    assert src.id is not None and dst.id is not None
    session.execute(update(Reference).where(col(Reference.person_id) == src.id).values(person_id=dst.id))
    session.execute(update(Face).where(col(Face.person_id) == src.id).values(person_id=dst.id))
    for concept in session.exec(select(Concept).where(Concept.person_id == src.id)).all():
        session.delete(concept)

    for score in session.exec(select(PersonScore).where(PersonScore.person_id == src.id)).all():
        session.delete(score)
    session.flush()
    session.delete(src)
    session.flush()
    for concept in session.exec(select(Concept).where(Concept.person_id == dst.id)).all():  # stale: more references now
        session.delete(concept)
    record_event(session, "merge", dst.id, f"{source} -> {target}")
    session.flush()
    return requeue_affected(session, {dst.id}, include_unknown=True)


def forget(session: Session, name: str) -> list[int]:
    """Remove a person's references and embeddings and un-tag their faces."""

    person = get_person(session, name)
    assert person.id is not None
    affected = requeue_affected(session, {person.id}, include_unknown=False)
    session.execute(
        update(Face)
        .where(col(Face.person_id) == person.id)
        .values(person_id=None, match_score=None, evidence_score=None, user_set=False)
    )
    for model in (Reference, Concept, PersonScore):
        for row in session.exec(select(model).where(model.person_id == person.id)).all():
            session.delete(row)
    session.flush()
    session.delete(person)
    record_event(session, "forget", person.id, person.name)
    session.flush()
    return affected


def correct_face(session: Session, face_id: int, name: str | None = None, not_name: str | None = None) -> list[int]:
    """A user's correction of one face; it outranks the model from now on.

    ``name``: this face is that person (``user_set``; any other face of the photo named so by the
    model is re-matched). ``not_name``: this face is not that person (remembered in
    ``rejected_person_ids``; the model will not give it that name again). Returns the photo to
    re-match (its caption changes).
    """
    face = session.get(Face, face_id)
    if face is None:
        raise PeopleError(
            f"no face with id {face_id} "
            '(see `pipeline sql "SELECT face_id, photo_path, person_name FROM photo_people"`)'
        )
    if (name is None) == (not_name is None):
        raise PeopleError("say either who the face is (--name) or who it is not (--not)")
    if name is not None:
        person = get_person(session, name)
        face.person_id, face.user_set, face.match_score = person.id, True, None
        detail = f"face {face_id} is {person.name}"
    else:
        person = get_person(session, not_name or "")
        rejected = {x for x in (face.rejected_person_ids or "").split(",") if x}
        rejected.add(str(person.id))
        face.rejected_person_ids = ",".join(sorted(rejected, key=int))
        if face.person_id == person.id:
            face.person_id, face.user_set, face.match_score = None, False, None
        detail = f"face {face_id} is not {person.name}"
    session.add(face)
    record_event(session, "correct", person.id, detail)
    session.flush()
    states.requeue_for_rematch(session, [face.photo_id])
    return [face.photo_id]
