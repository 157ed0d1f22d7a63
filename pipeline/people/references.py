"""A person's references beyond enrolment: a face of the album becomes a reference, with its
provenance (``reference_images.source`` = ``correction`` or ``cluster``, ``face_id``,
``photo_id``), and the listing ``pipeline people show`` prints.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
from sqlmodel import Session, col, select

from pipeline.config import Settings
from pipeline.people.changes import requeue_photos
from pipeline.people.registry import PeopleError, get_person, record_event
from pipeline.store.models import Face, Person, Photo, Reference

SOURCES = ("enrolment", "correction", "cluster")


@dataclass(frozen=True)
class ReferenceListing:
    """One reference as ``pipeline people show`` lists it."""

    id: int
    source: str
    original_path: str
    face_id: int | None
    photo_id: int | None
    det_score: float
    created_at: datetime


def add_face_reference(
    session: Session, settings: Settings, face: Face, person: Person, source: str
) -> Reference | None:
    """Make ``face`` a reference of ``person`` (its stored embedding, its photo copied
    content-addressed like an enrolment reference); returns the new row, or None when this face
    already is one of theirs. Records an enrolment event. Raises :class:`PeopleError` when the
    photo file is gone. Commits nothing.
    """
    from pipeline.people.enrolment import store_reference_copy
    from pipeline.photos.files import sha256_file

    if source not in SOURCES:
        raise ValueError(f"unknown reference source {source!r}")
    assert person.id is not None and face.id is not None
    existing = session.exec(
        select(Reference).where(col(Reference.person_id) == person.id, col(Reference.face_id) == face.id)
    ).first()
    if existing is not None:
        return None
    photo = session.get(Photo, face.photo_id)
    if photo is None or not Path(photo.path).is_file():
        where = photo.path if photo is not None else f"photo {face.photo_id}"
        raise PeopleError(f"{where}: the photo of face {face.id} is gone; it cannot become a reference")
    source_path = Path(photo.path)
    digest = sha256_file(source_path)
    stored = store_reference_copy(settings, source_path, digest)
    reference = Reference(
        person_id=person.id,
        sha256=digest,
        stored_path=str(stored),
        original_path=str(source_path),
        x=face.x,
        y=face.y,
        w=face.w,
        h=face.h,
        det_score=face.det_score,
        embedding=face.embedding,
        source=source,
        face_id=face.id,
        photo_id=face.photo_id,
    )
    session.add(reference)
    record_event(session, "reference", person.id, f"{person.name}: face {face.id} ({source})")
    session.flush()
    return reference


def photos_near(session: Session, embeddings: list[np.ndarray], threshold: float) -> set[int]:
    """Photos with an unknown face no user has set whose cosine to any of ``embeddings`` (128,)
    is >= ``threshold``: the photos a new reference could name a face in."""
    from pipeline.recognition.faces import embedding_from_bytes

    if not embeddings:
        return set()
    refs = np.stack(embeddings).astype(np.float32)
    rows = session.exec(
        select(Face.photo_id, Face.embedding).where(col(Face.person_id).is_(None), col(Face.user_set).is_(False))
    ).all()
    found: set[int] = set()
    for start in range(0, len(rows), 4096):
        chunk = rows[start : start + 4096]
        faces = np.stack([embedding_from_bytes(e) for _, e in chunk])
        near = (faces @ refs.T).max(axis=1) >= threshold
        found.update(int(chunk[int(i)][0]) for i in np.flatnonzero(near))
    return found


def requeue_for_new_references(session: Session, settings: Settings, references: list[Reference]) -> list[int]:
    """Re-queue the photos a new reference could change (:func:`photos_near` at the lowest
    threshold the open-set rule uses: one person enrolled)."""
    from pipeline.recognition.faces import embedding_from_bytes

    embeddings = [embedding_from_bytes(r.embedding) for r in references]
    return requeue_photos(session, photos_near(session, embeddings, settings.match_threshold))


def list_references(session: Session, name: str) -> tuple[Person, list[ReferenceListing]]:
    """The person called ``name`` and their references, oldest first. Raises :class:`PeopleError`
    for an unknown name."""
    person = get_person(session, name)
    query = select(Reference).where(col(Reference.person_id) == person.id).order_by(col(Reference.id))
    rows = session.exec(query).all()
    return person, [
        ReferenceListing(
            id=r.id or 0,
            source=r.source,
            original_path=r.original_path,
            face_id=r.face_id,
            photo_id=r.photo_id,
            det_score=r.det_score,
            created_at=r.created_at,
        )
        for r in rows
    ]


def correct_as_reference(session: Session, settings: Settings, face_id: int, name: str) -> list[int]:
    """``pipeline correct FACE --name NAME --reference``: the user's correction (see
    :func:`pipeline.people.changes.correct_face`), then the face becomes one of NAME's references
    (source ``correction``). Returns the re-queued photo ids (this photo and those the new
    reference could change)."""
    from pipeline.people.changes import correct_face

    requeued = set(correct_face(session, face_id, name=name))
    face = session.get(Face, face_id)
    assert face is not None  # correct_face raised otherwise
    reference = add_face_reference(session, settings, face, get_person(session, name), "correction")
    if reference is not None:
        requeued.update(requeue_for_new_references(session, settings, [reference]))
    return sorted(requeued)
