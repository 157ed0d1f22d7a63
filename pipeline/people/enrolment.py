"""Enrolment: a person from reference photos (one face each), stored once with the profile's data.

Detects one face per reference, stores its SFace embedding and a content-addressed copy of the
image, computes the profile's per-person data once, records an enrolment event and re-queues only
the photos whose faces could change.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from sqlmodel import Session, col, select

from pipeline.config import Settings
from pipeline.people.changes import requeue_affected
from pipeline.people.registry import PeopleError, clean_name, find_or_create_person, record_event
from pipeline.photos.path_text import path_text
from pipeline.store.models import Concept, Person, Reference, utcnow

if TYPE_CHECKING:
    from pipeline.recognition.faces import DetectedFace


@dataclass
class EnrollResult:
    person_id: int
    name: str
    created: bool
    added_references: int
    skipped_duplicates: int
    requeued_photo_ids: list[int] = field(default_factory=list)


def store_reference_copy(settings: Settings, source: Path, digest: str) -> Path:
    """Content-addressed copy: ``references/ab/abcdef....jpg``."""
    target = settings.references_dir / digest[:2] / f"{digest}{source.suffix.lower()}"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        shutil.copyfile(source, tmp)
        tmp.replace(target)
    return target


def _pick_face(path: Path, faces: list[DetectedFace], face: int | None) -> DetectedFace:
    """Face ``face`` (0 = leftmost), else the only or dominant face
    (:func:`pipeline.recognition.reference_face.dominant_face`, the rule evaluation uses too)."""
    from pipeline.recognition.reference_face import DOMINANT_AREA_RATIO, describe_faces, dominant_face

    if not faces:
        raise PeopleError(f"{path}: no face found; use a photo where the face is clearly visible")
    if face is not None:
        if not 0 <= face < len(faces):
            raise PeopleError(
                f"{path}: --face {face} is out of range; the photo has {len(faces)} face(s), 0 = leftmost"
            )
        return faces[face]
    chosen = dominant_face(faces)
    if chosen is None:
        raise PeopleError(
            f"{path}: {len(faces)} faces found; choose one with --face N (0 = leftmost; "
            f"none is {DOMINANT_AREA_RATIO:g}x larger than the others): {describe_faces(faces)}"
        )
    return chosen


def enroll(
    session: Session, settings: Settings, name: str, images: list[Path], face: int | None = None
) -> EnrollResult:
    """Enrol ``name`` from reference images (or add references to an existing person).

    Uses the only or dominant face of each image (or face number ``face``, 0 = leftmost), stores its SFace
    embedding and a content-addressed copy of the image, computes the profile's per-person data
    (if it encodes people) once,
    records an enrolment event and re-queues unknown faces' photos. Commits nothing itself.
    """
    from pipeline.photos.decode import PhotoError, decode_photo
    from pipeline.photos.files import sha256_file
    from pipeline.recognition.faces import embedding_to_bytes, get_face_model

    name = clean_name(name)
    if not images:
        raise PeopleError("give at least one reference image")
    model = get_face_model()
    prepared = []
    for path in images:
        path = Path(path)
        if not path.is_file():
            raise PeopleError(f"{path}: no such file")
        try:
            decoded = decode_photo(path, settings.max_image_pixels)
        except PhotoError as exc:
            raise PeopleError(str(exc)) from exc
        chosen = _pick_face(path, model.detect(np.asarray(decoded.image)), face)
        prepared.append((path, sha256_file(path), chosen))

    person, created = find_or_create_person(session, name)
    assert person.id is not None
    existing = {r.sha256 for r in session.exec(select(Reference).where(col(Reference.person_id) == person.id)).all()}
    added = skipped = 0
    for path, digest, chosen in prepared:
        if digest in existing:
            skipped += 1
            continue
        stored = store_reference_copy(settings, path, digest)
        x, y, w, h = chosen.box
        session.add(
            Reference(
                person_id=person.id,
                sha256=digest,
                stored_path=str(stored),
                original_path=path_text(path.resolve())[0],  # any bytes in the name, shown escaped
                x=x,
                y=y,
                w=w,
                h=h,
                det_score=float(chosen.score),
                embedding=embedding_to_bytes(chosen.embedding),
            )
        )
        existing.add(digest)
        added += 1
    session.flush()
    if added:
        refresh_concept(session, settings, person)
        record_event(session, "enroll", person.id, f"{person.name}: +{added} reference(s)")
    requeued = requeue_affected(session, {person.id}, include_unknown=True) if added else []
    return EnrollResult(person.id, person.name, created, added, skipped, requeued)


def refresh_concept(session: Session, settings: Settings, person: Person) -> Concept | None:
    """(Re)compute the person's profile data from all their references (profiles that
    :attr:`~pipeline.profiles.Profile.encodes_people` only; None otherwise)."""
    from PIL import Image

    from pipeline.profiles import get_profile

    profile = get_profile(settings)
    if not profile.encodes_people:
        return None
    refs = session.exec(
        select(Reference).where(col(Reference.person_id) == person.id).order_by(col(Reference.id))
    ).all()
    images = [Image.open(r.stored_path).convert("RGB") for r in refs]
    data = profile.encode_person(images)
    if data is None:
        return None
    assert person.id is not None  # the person row was flushed before its references
    n_tokens, dim, tokens, lm_weight = profile.person_record(data)
    version = profile.model_version
    row = session.exec(
        select(Concept).where(col(Concept.person_id) == person.id, col(Concept.model_version) == version)
    ).first()
    if row is None:
        row = Concept(person_id=person.id, model_version=version, n_tokens=0, dim=0, tokens=b"", lm_weight=b"")
    row.n_tokens, row.dim, row.tokens, row.lm_weight, row.created_at = n_tokens, dim, tokens, lm_weight, utcnow()
    session.add(row)
    session.flush()
    return row
