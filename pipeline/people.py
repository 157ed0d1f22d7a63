"""People: enrol, rename, merge, forget, and the index workers match against.

Every change appends an ``enrolment_events`` row (the enrolment version) and re-queues only the
photos whose faces could change: unknown faces and faces of the people concerned. Re-matching
uses the stored face embeddings (no detector runs again).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sqlalchemy import func, or_, update
from sqlmodel import Session, select

from pipeline.config import Settings
from pipeline.models import Concept, EnrolmentEvent, Face, Person, Photo, Reference, utcnow


class PeopleError(ValueError):
    """A user-facing problem with a people command (message says what and how to fix)."""


@dataclass
class EnrollResult:
    person_id: int
    name: str
    created: bool
    added_references: int
    skipped_duplicates: int
    requeued_photo_ids: list[int] = field(default_factory=list)


def name_key(name: str) -> str:
    return " ".join(name.split()).casefold()


def clean_name(name: str) -> str:
    cleaned = " ".join(name.split())
    if not cleaned:
        raise PeopleError("a name cannot be empty")
    if len(cleaned) > 200:
        raise PeopleError("a name can have at most 200 characters")
    if any(ch in cleaned for ch in "<>"):
        raise PeopleError("a name cannot contain '<' or '>' (they delimit concept tokens)")
    return cleaned


def find_person(session: Session, name: str) -> Person | None:
    return session.exec(select(Person).where(Person.name_key == name_key(name))).first()


def get_person(session: Session, name: str) -> Person:
    person = find_person(session, name)
    if person is None:
        known = ", ".join(p.name for p in session.exec(select(Person).order_by(Person.name)).all()) or "nobody yet"
        raise PeopleError(f"no person named {name!r} (enrolled: {known})")
    return person


def enrolment_version(session: Session) -> int:
    """The current enrolment version (0 before anyone was enrolled)."""
    return int(session.exec(select(func.coalesce(func.max(EnrolmentEvent.id), 0))).one())


def _record(session: Session, kind: str, person_id: int | None, detail: str) -> None:
    session.add(EnrolmentEvent(kind=kind, person_id=person_id, detail=detail))


def _store_reference_copy(settings: Settings, source: Path, digest: str) -> Path:
    """Content-addressed copy: ``references/ab/abcdef....jpg``."""
    target = settings.references_dir / digest[:2] / f"{digest}{source.suffix.lower()}"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        shutil.copyfile(source, tmp)
        tmp.replace(target)
    return target


def _pick_face(path: Path, faces: list, face: int | None) -> object:  # type: ignore[type-arg]
    if not faces:
        raise PeopleError(f"{path}: no face found; use a photo where the face is clearly visible")
    if face is not None:
        if not 0 <= face < len(faces):
            raise PeopleError(f"{path}: --face {face} is out of range; the photo has {len(faces)} face(s), 0 = leftmost")
        return faces[face]
    if len(faces) > 1:
        listing = "; ".join(
            f"{i}: box x={f.box[0]:.2f} y={f.box[1]:.2f} w={f.box[2]:.2f} h={f.box[3]:.2f} score={f.score:.2f}"
            for i, f in enumerate(faces)
        )
        raise PeopleError(f"{path}: {len(faces)} faces found; choose one with --face N (0 = leftmost): {listing}")
    return faces[0]


def enroll(session: Session, settings: Settings, name: str, images: list[Path], face: int | None = None) -> EnrollResult:
    """Enrol ``name`` from reference images (or add references to an existing person).

    Detects exactly one face per image (or face number ``face``, 0 = leftmost), stores its SFace
    embedding and a content-addressed copy of the image, computes profile data (PLVM concept) once,
    records an enrolment event and re-queues unknown faces' photos. Commits nothing itself.
    """
    from pipeline.faces import embedding_to_bytes, get_face_model
    from pipeline.photos import PhotoError, decode_photo, sha256_file

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

    person = find_person(session, name)
    created = person is None
    if person is None:
        person = Person(name=name, name_key=name_key(name))
        session.add(person)
        session.flush()
    assert person.id is not None
    existing = {r.sha256 for r in session.exec(select(Reference).where(Reference.person_id == person.id)).all()}
    added = skipped = 0
    for path, digest, chosen in prepared:
        if digest in existing:
            skipped += 1
            continue
        stored = _store_reference_copy(settings, path, digest)
        x, y, w, h = chosen.box  # type: ignore[attr-defined]
        session.add(
            Reference(
                person_id=person.id, sha256=digest, stored_path=str(stored), original_path=str(path.resolve()),
                x=x, y=y, w=w, h=h, det_score=float(chosen.score),  # type: ignore[attr-defined]
                embedding=embedding_to_bytes(chosen.embedding),  # type: ignore[attr-defined]
            )
        )  # fmt: skip
        existing.add(digest)
        added += 1
    session.flush()
    if added:
        refresh_concept(session, settings, person)
        _record(session, "enroll", person.id, f"{person.name}: +{added} reference(s)")
    requeued = requeue_affected(session, {person.id}, include_unknown=True) if added else []
    return EnrollResult(person.id, person.name, created, added, skipped, requeued)


def refresh_concept(session: Session, settings: Settings, person: Person) -> Concept | None:
    """(Re)compute the person's profile data from all their references (plvm/tiny only)."""
    if settings.profile == "faces":
        return None
    from PIL import Image

    from pipeline.profiles import get_profile

    profile = get_profile(settings)
    refs = session.exec(select(Reference).where(Reference.person_id == person.id).order_by(Reference.id)).all()
    images = [Image.open(r.stored_path).convert("RGB") for r in refs]
    concept = profile.encode_person(images)
    if concept is None:
        return None
    tokens, lm_weight = concept.to_bytes()
    version = profile.model_version
    row = session.exec(select(Concept).where(Concept.person_id == person.id, Concept.model_version == version)).first()
    if row is None:
        row = Concept(person_id=person.id, model_version=version, n_tokens=0, dim=0, tokens=b"", lm_weight=b"")
    row.n_tokens, row.dim = int(concept.tokens.shape[0]), int(concept.tokens.shape[1])
    row.tokens, row.lm_weight, row.created_at = tokens, lm_weight, utcnow()
    session.add(row)
    session.flush()
    return row


def requeue_affected(session: Session, person_ids: set[int], include_unknown: bool) -> list[int]:
    """Mark done photos whose faces could change for re-matching; return their ids.

    Affected: photos with a face of one of ``person_ids``, plus (``include_unknown``) photos with
    an unknown face that no user has set. Photos already queued or processing are left alone (a
    worker re-checks the enrolment version when it finishes).
    """
    conditions = [Face.person_id.in_(person_ids)] if person_ids else []  # type: ignore[union-attr]
    if include_unknown:
        conditions.append((Face.person_id.is_(None)) & (Face.user_set.is_(False)))  # type: ignore[union-attr,attr-defined]
    if not conditions:
        return []
    photo_ids = sorted(set(session.exec(select(Face.photo_id).where(or_(*conditions))).all()))
    if not photo_ids:
        return []
    session.execute(
        update(Photo)
        .where(Photo.id.in_(photo_ids), Photo.state == "done")  # type: ignore[union-attr]
        .values(state="queued", work="rematch", queued_at=utcnow(), attempts=0, error=None)
    )
    return list(session.exec(select(Photo.id).where(Photo.id.in_(photo_ids), Photo.state == "queued").order_by(Photo.id)).all())  # type: ignore[union-attr,arg-type]


def rename(session: Session, old: str, new: str) -> list[int]:
    """Rename a person; captions that use the name are redone. Returns re-queued photo ids."""
    person = get_person(session, old)
    new = clean_name(new)
    other = find_person(session, new)
    if other is not None and other.id != person.id:
        raise PeopleError(f"{other.name!r} already exists; use `pipeline people merge {person.name!r} {other.name!r}`")
    person.name, person.name_key = new, name_key(new)
    session.add(person)
    _record(session, "rename", person.id, f"{old} -> {new}")
    session.flush()
    assert person.id is not None
    return requeue_affected(session, {person.id}, include_unknown=False)


def merge(session: Session, source: str, target: str) -> list[int]:
    """Move ``source``'s references and faces to ``target`` and delete ``source``."""
    src, dst = get_person(session, source), get_person(session, target)
    if src.id == dst.id:
        raise PeopleError("cannot merge a person into themselves")
    assert src.id is not None and dst.id is not None
    session.execute(update(Reference).where(Reference.person_id == src.id).values(person_id=dst.id))
    session.execute(update(Face).where(Face.person_id == src.id).values(person_id=dst.id))
    for concept in session.exec(select(Concept).where(Concept.person_id == src.id)).all():
        session.delete(concept)
    from pipeline.models import PersonScore

    for score in session.exec(select(PersonScore).where(PersonScore.person_id == src.id)).all():
        session.delete(score)
    session.flush()
    session.delete(src)
    session.flush()
    for concept in session.exec(select(Concept).where(Concept.person_id == dst.id)).all():  # stale: more references now
        session.delete(concept)
    _record(session, "merge", dst.id, f"{source} -> {target}")
    session.flush()
    return requeue_affected(session, {dst.id}, include_unknown=True)


def forget(session: Session, name: str) -> list[int]:
    """Remove a person's references and embeddings and un-tag their faces."""
    from pipeline.models import PersonScore

    person = get_person(session, name)
    assert person.id is not None
    affected = requeue_affected(session, {person.id}, include_unknown=False)
    session.execute(
        update(Face).where(Face.person_id == person.id).values(person_id=None, match_score=None, plvm_score=None, user_set=False)
    )
    for model in (Reference, Concept, PersonScore):
        for row in session.exec(select(model).where(model.person_id == person.id)).all():  # type: ignore[attr-defined]
            session.delete(row)
    session.flush()
    session.delete(person)
    _record(session, "forget", person.id, person.name)
    session.flush()
    return affected


def list_people(session: Session) -> list[dict[str, object]]:
    """Each person with reference and photo counts, ordered by name."""
    refs = dict(session.exec(select(Reference.person_id, func.count()).group_by(Reference.person_id)).all())
    photos = dict(
        session.exec(
            select(Face.person_id, func.count(func.distinct(Face.photo_id)))
            .join(Photo, Photo.id == Face.photo_id)
            .where(Photo.state != "missing")
            .group_by(Face.person_id)
        ).all()
    )
    return [
        {"id": p.id, "name": p.name, "references": refs.get(p.id, 0), "photos": photos.get(p.id, 0), "enrolled": p.created_at}
        for p in session.exec(select(Person).order_by(Person.name_key)).all()
    ]


def correct_face(session: Session, face_id: int, name: str | None = None, not_name: str | None = None) -> list[int]:
    """A user's correction of one face; it outranks the model from now on.

    ``name``: this face is that person (``user_set``; any other face of the photo named so by the
    model is re-matched). ``not_name``: this face is not that person (remembered in
    ``rejected_person_ids``; the model will not give it that name again). Returns the photo to
    re-match (its caption changes).
    """
    face = session.get(Face, face_id)
    if face is None:
        raise PeopleError(f"no face with id {face_id} (see `pipeline sql \"SELECT face_id, photo_path, person_name FROM photo_people\"`)")
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
    _record(session, "correct", person.id, detail)
    session.flush()
    session.execute(
        update(Photo).where(Photo.id == face.photo_id, Photo.state == "done")
        .values(state="queued", work="rematch", queued_at=utcnow(), attempts=0, error=None)
    )  # fmt: skip
    return [face.photo_id]
