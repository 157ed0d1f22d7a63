"""Tagging: photo ids in, rows in the database out, whatever the profile.

A worker task calls :func:`process_photos`. For each photo it claims the row (state
``processing``, ``attempts + 1``, committed before any model runs), then either tags it (decode,
detect faces, match, describe) or re-matches it (``work = rematch``: stored face embeddings
against the current people, then redo what depends on the people present). Results replace the
photo's earlier results for the same model version, so running a task twice changes nothing.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import TypeVar

import numpy as np
from PIL import Image
from sqlalchemy import delete, update
from sqlmodel import Session, col, select

from pipeline.config import Settings
from pipeline.people.index import load_people_index
from pipeline.people.registry import enrolment_version
from pipeline.profiles import Description, PeopleIndex, Profile, Scene, get_profile
from pipeline.recognition.fusion import fused_scores
from pipeline.store import states
from pipeline.store.claim_owner import Heartbeat, this_process
from pipeline.store.models import Answer, Caption, Face, PersonScore, Photo, utcnow
from pipeline.store.states import PhotoState, WorkKind
from pipeline.store.storage_full import StorageBackoff, is_storage_full

log = logging.getLogger(__name__)
MAX_REMATCH_ROUNDS = 3
T = TypeVar("T")


@dataclass
class FaceData:
    box: tuple[float, float, float, float]
    det_score: float
    embedding: np.ndarray  # (128,) float32
    row_id: int | None = None  # existing faces row (rematch)
    user_person_id: int | None = None  # set by a user: outranks the model
    rejected: set[int] = field(default_factory=set)
    person_id: int | None = None
    match_score: float | None = None
    evidence_score: float | None = None  # the profile's recognition evidence for the named person


@dataclass
class Item:
    photo_id: int
    path: str
    work: str
    image: Image.Image | None = None
    width: int = 0  # pixels of the upright image (boxes are relative to it)
    faces: list[FaceData] = field(default_factory=list)
    evidence: np.ndarray | None = None  # (P,) the profile's recognition evidence per enrolled person


@dataclass
class Outcome:
    done: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    missing: list[int] = field(default_factory=list)


def claim(session: Session, photo_id: int, task_id: str, settings: Settings) -> tuple[Photo | None, bool]:
    """Take a photo for this task; returns (photo or None if not ours to do, redelivered?).

    Claimable: ``queued``; or ``processing`` by this same task id (the message was redelivered
    after its worker died) or without a heartbeat for ``stale_after``. Records this process as
    the owner (:mod:`pipeline.store.claim_owner`). Commits the attempt count before any model
    runs, so a photo that kills its worker is failed after ``max_attempts`` tries. "Redelivered"
    is also true for a photo claimed before that never finished (its worker died; the sweeper
    returned it), so it runs alone.
    """
    before = session.get(Photo, photo_id)
    if before is None:
        return None, False
    redelivered = before.state == PhotoState.PROCESSING and before.claimed_by == task_id
    stale = utcnow() - timedelta(seconds=settings.stale_after)
    claimed = states.claim(session, photo_id, task_id, stale, owner=this_process())
    session.commit()
    if not claimed:
        return None, False
    session.refresh(before)
    redelivered = redelivered or before.attempts > 1
    if before.attempts > settings.max_attempts:
        why = f"last error: {before.error}" if before.error else "the worker died or hit its time limit on this photo"
        _finish_failed(session, before, task_id, f"gave up after {before.attempts - 1} attempts: {why}")
        return None, redelivered
    return before, redelivered


def _finish_failed(session: Session, photo: Photo, task_id: str, reason: str) -> None:
    assert photo.id is not None
    states.fail(session, photo.id, task_id, reason)
    session.commit()
    log.warning("photo %s failed: %s", photo.path, reason)


def _load_item(session: Session, photo: Photo, settings: Settings, profile: Profile, wants_pixels: bool) -> Item:
    """Decode and detect (tag) or read stored faces (rematch). Raises PhotoError/FileNotFoundError."""
    from pipeline.photos.decode import decode_photo
    from pipeline.recognition.faces import embedding_from_bytes, get_face_model

    assert photo.id is not None
    item = Item(photo_id=photo.id, path=photo.path, work=photo.work, width=photo.width or 0)
    rematch = photo.work == WorkKind.REMATCH and photo.width is not None
    stored = (
        session.exec(select(Face).where(col(Face.photo_id) == photo.id).order_by(col(Face.idx))).all()
        if rematch
        else []
    )
    if rematch and not wants_pixels:
        item.faces = [_face_from_row(f, embedding_from_bytes(f.embedding)) for f in stored]
        return item
    if not os.path.exists(photo.file_path):  # the exact name, also when its bytes are not UTF-8
        raise FileNotFoundError(photo.path)
    decoded = decode_photo(Path(photo.file_path), settings.max_image_pixels)  # PhotoError: readable reason
    item.image = decoded.image
    if rematch:
        item.faces = [_face_from_row(f, embedding_from_bytes(f.embedding)) for f in stored]
        return item
    photo.width, photo.height, photo.taken_at = decoded.width, decoded.height, decoded.taken_at
    item.width = decoded.width
    session.add(photo)
    session.commit()
    detected = get_face_model().detect(np.asarray(decoded.image))
    item.faces = [FaceData(box=d.box, det_score=float(d.score), embedding=d.embedding) for d in detected]
    return item


def _face_from_row(row: Face, embedding: np.ndarray) -> FaceData:
    rejected = {int(x) for x in (row.rejected_person_ids or "").split(",") if x.strip()}
    return FaceData(
        box=(row.x, row.y, row.w, row.h),
        det_score=row.det_score,
        embedding=embedding,
        row_id=row.id,
        user_person_id=row.person_id if row.user_set else None,
        rejected=rejected,
    )


def _name_faces(item: Item, index: PeopleIndex, settings: Settings) -> None:
    """Fill person_id / match_score / evidence_score of each face (one person at most once)."""
    from pipeline.recognition.matching import person_scores
    from pipeline.recognition.open_set import NamingRule, name_faces

    if not item.faces:
        return
    embs = np.stack([f.embedding for f in item.faces]).astype(np.float32)
    refs, ref_ids = index.ref_matrix
    cos, person_ids = person_scores(embs, refs, ref_ids)  # (F, P)
    evidence_by_person = None
    if item.evidence is not None and person_ids:
        order = {p.id: i for i, p in enumerate(index.people)}
        evidence_by_person = np.array([item.evidence[order[pid]] for pid in person_ids])
    rule = NamingRule.from_settings(settings)
    # The fusion rule's weak-match band sits below the threshold this gallery size needs.
    scores = fused_scores(
        cos, evidence_by_person, settings.fusion, rule.threshold(len(person_ids)), settings.recognition_threshold
    )
    fixed = {i: f.user_person_id for i, f in enumerate(item.faces) if f.user_person_id is not None}
    forbidden = [(i, pid) for i, f in enumerate(item.faces) for pid in f.rejected]
    matches = name_faces(
        scores,
        person_ids,
        rule,
        face_widths_px=[f.box[2] * item.width for f in item.faces],
        det_scores=[f.det_score for f in item.faces],
        fixed=fixed,
        forbidden=forbidden,
    )
    column = {pid: j for j, pid in enumerate(person_ids)}
    for face_idx, (face, match) in enumerate(zip(item.faces, matches, strict=True)):
        face.person_id = match.person_id
        if match.person_id is not None and match.person_id in column:
            j = column[match.person_id]
            face.match_score = float(cos[face_idx, j])
            face.evidence_score = float(evidence_by_person[j]) if evidence_by_person is not None else None
        else:
            face.match_score = face.evidence_score = None


def _scene(item: Item, index: PeopleIndex) -> Scene:
    people = index.by_id()
    named = sorted((f for f in item.faces if f.person_id is not None), key=lambda f: f.box[0] + f.box[2] / 2)
    present = [people[f.person_id] for f in named if f.person_id in people]
    return Scene(image=item.image, present=present, n_unknown=sum(f.person_id is None for f in item.faces))


def _write(session: Session, item: Item, desc: Description, index: PeopleIndex, profile: Profile, task_id: str) -> bool:
    """Replace this photo's results for this model version; returns False if the claim was lost."""
    from pipeline.recognition.faces import embedding_to_bytes

    version = profile.model_version
    owned = states.finish(
        session,
        item.photo_id,
        task_id,
        profile=profile.name,
        model_version=version,
        enrolment_version=index.version,
    )
    if not owned:
        session.rollback()
        return False
    if item.work == WorkKind.REMATCH:
        for face in item.faces:
            session.execute(
                update(Face)
                .where(col(Face.id) == face.row_id)
                .values(person_id=face.person_id, match_score=face.match_score, evidence_score=face.evidence_score)
            )
    else:
        session.execute(delete(Face).where(col(Face.photo_id) == item.photo_id))
        for idx, face in enumerate(item.faces):
            x, y, w, h = face.box
            session.add(
                Face(
                    photo_id=item.photo_id,
                    idx=idx,
                    x=x,
                    y=y,
                    w=w,
                    h=h,
                    det_score=face.det_score,
                    embedding=embedding_to_bytes(face.embedding),
                    person_id=face.person_id,
                    match_score=face.match_score,
                    evidence_score=face.evidence_score,
                )
            )
    if item.evidence is not None:
        session.execute(
            delete(PersonScore).where(
                col(PersonScore.photo_id) == item.photo_id, col(PersonScore.model_version) == version
            )
        )
        for person, score in zip(index.people, item.evidence, strict=True):
            session.add(
                PersonScore(photo_id=item.photo_id, person_id=person.id, model_version=version, score=float(score))
            )
    session.execute(
        delete(Caption).where(col(Caption.photo_id) == item.photo_id, col(Caption.model_version) == version)
    )
    session.execute(delete(Answer).where(col(Answer.photo_id) == item.photo_id, col(Answer.model_version) == version))
    session.add(
        Caption(
            photo_id=item.photo_id,
            text=desc.caption,
            profile=profile.name,
            model_version=version,
            enrolment_version=index.version,
        )
    )
    for question, text in desc.answers.items():
        session.add(
            Answer(
                photo_id=item.photo_id,
                question=question,
                text=text,
                profile=profile.name,
                model_version=version,
                enrolment_version=index.version,
            )
        )
    session.commit()
    return True


def _process_chunk(
    session: Session, photos: list[Photo], settings: Settings, profile: Profile, task_id: str, outcome: Outcome
) -> None:
    from pipeline.photos.decode import PhotoError

    try:
        index = load_people_index(session, settings, profile)
    except Exception as exc:  # every photo of the chunk fails with the real reason, at once
        if _is_transient(exc):
            raise
        log.exception("loading the enrolled people")
        session.rollback()
        for photo in photos:
            assert photo.id is not None
            _finish_failed(session, photo, task_id, f"could not load the enrolled people: {_reason(exc)}")
            outcome.failed.append(photo.id)
        return
    wants_pixels = profile.needs_pixels_to_describe or profile.gives_recognition_evidence
    items: list[Item] = []
    for photo in photos:
        assert photo.id is not None  # rows read from the database have their id
        try:
            items.append(_load_item(session, photo, settings, profile, wants_pixels))
        except FileNotFoundError:
            states.vanished(session, photo.id, task_id)
            session.commit()
            outcome.missing.append(photo.id)
        except PhotoError as exc:
            _finish_failed(session, photo, task_id, exc.reason)
            outcome.failed.append(photo.id)
        except Exception as exc:  # a bug or a model error: fail this photo, keep the worker going
            if _is_transient(exc):
                raise  # not the photo's fault: the caller waits and tries again
            log.exception("loading photo %s", photo.path)
            session.rollback()
            _finish_failed(session, photo, task_id, _reason(exc))
            outcome.failed.append(photo.id)
    if not items:
        return
    try:
        with_pixels = [it for it in items if it.image is not None]
        if index.people and with_pixels:
            images = [it.image for it in with_pixels if it.image is not None]
            scores = profile.recognition_scores(images, index.people)
            if scores is not None:
                _check_count(profile, "recognition score rows", len(scores), len(with_pixels))
                for it, row in zip(with_pixels, scores, strict=True):
                    it.evidence = np.asarray(row, dtype=np.float64)
                    _check_count(profile, "scores per photo", len(it.evidence), len(index.people))
        for it in items:
            _name_faces(it, index, settings)
        descriptions = profile.describe([_scene(it, index) for it in items], settings.questions)
        _check_count(profile, "descriptions", len(descriptions), len(items))
    except Exception as exc:
        if _is_transient(exc):
            raise
        log.exception("profile %s failed on a batch of %d", profile.name, len(items))
        if len(items) > 1:  # retry one by one so one bad photo does not fail the others
            for it in items:
                one = session.get(Photo, it.photo_id)
                assert one is not None
                _process_chunk(session, [one], settings, profile, task_id, outcome)
            return
        only = session.get(Photo, items[0].photo_id)
        assert only is not None
        _finish_failed(session, only, task_id, _reason(exc))
        outcome.failed.append(items[0].photo_id)
        return
    written: list[int] = []
    for it, desc in zip(items, descriptions, strict=True):
        try:
            owned = _write(session, it, desc, index, profile, task_id)
        except Exception as exc:  # this photo's rows could not be written: fail it, write the others
            if _is_transient(exc):
                raise
            log.exception("writing the results of photo %s", it.path)
            session.rollback()
            only = session.get(Photo, it.photo_id)
            assert only is not None
            _finish_failed(session, only, task_id, f"could not write the results: {_reason(exc)}")
            outcome.failed.append(it.photo_id)
            continue
        (outcome.done if owned else outcome.skipped).append(it.photo_id)
        if owned:
            written.append(it.photo_id)
    _join_clusters(session, written)


class ProfileResultError(RuntimeError):
    """A profile returned a different number of results than it was given photos (or people)."""


def _check_count(profile: Profile, what: str, got: int, expected: int) -> None:
    if got != expected:
        raise ProfileResultError(f"profile {profile.name!r} returned {got} {what} for {expected}")


def _reason(exc: BaseException) -> str:
    """What went wrong, for ``photos.error``: the exception's type and message."""
    return f"{type(exc).__name__}: {exc}"


def _is_transient(exc: BaseException) -> bool:
    """Errors that are not the photos' fault and pass: a full disk (the caller waits for room),
    a database that is busy or unreachable (the task is retried), a vanished database file."""
    from sqlalchemy.exc import OperationalError

    from pipeline.store.db_file import DatabaseGoneError

    return is_storage_full(exc) or isinstance(exc, (OperationalError, DatabaseGoneError))


def _join_clusters(session: Session, photo_ids: list[int]) -> None:
    """New unknown faces of these photos join their nearest cluster (milliseconds); a failure
    here is logged and leaves the faces for the next `pipeline clusters`."""
    from pipeline.people.clusters import assign_new_faces

    if not photo_ids:
        return
    try:
        assign_new_faces(session, photo_ids)
        session.commit()
    except Exception:
        session.rollback()
        log.exception("joining the unknown faces of photos %s to clusters", photo_ids)


def warm_up(settings: Settings, db_url: str | None = None) -> None:
    """Load the face model and the configured profile's models in this process now, and open
    its database connection, so the first photo is tagged as fast as the rest. Side effects:
    reads model files (seconds to minutes for the large profiles), one read query; failures raise, and the
    first task reports them again with the photo."""
    from pipeline.recognition.faces import EMBEDDING_SIZE, get_face_model
    from pipeline.recognition.matching import assign_people, person_scores
    from pipeline.store.db import session_scope

    with session_scope(db_url or settings.db_url) as session:
        enrolment_version(session)
    one = np.eye(1, EMBEDDING_SIZE, dtype=np.float32)
    assign_people(*person_scores(one, one, [1]), settings.match_threshold)  # imports the solver (~0.2 s)
    get_face_model().warm_up()  # every profile detects faces
    get_profile(settings).warm_up()


def process_photos(photo_ids: list[int], task_id: str, settings: Settings, db_url: str | None = None) -> Outcome:
    """Tag or re-match these photos (a worker task's body). Side effects: database writes only.

    Normally the whole batch is claimed and run through the profile together; when the task was
    redelivered (its previous worker died), photos are claimed and run one at a time so the one
    that killed the worker does not take the others' attempts with it.

    While the storage is full, claims and results wait with exponential backoff and are tried
    again (the photos stay claimed, their heartbeat goes on). Raises
    :class:`pipeline.store.db_file.DatabaseGoneError` before claiming anything when the SQLite
    file was deleted or replaced since this process opened it.
    """
    from pipeline.store.db import session_scope
    from pipeline.store.db_file import check_database_file

    outcome = Outcome()
    profile = get_profile(settings)
    url = db_url or settings.db_url
    try:
        with Heartbeat(url, settings.heartbeat_interval), session_scope(url) as session:
            pending = list(dict.fromkeys(photo_ids))
            rounds = 0
            while pending:
                check_database_file(url)
                claimed, one_by_one = [], False
                for pid in pending:
                    photo, redelivered = _until_room(
                        session, "claiming a photo", partial(claim, session, pid, task_id, settings)
                    )
                    one_by_one |= redelivered
                    if photo is None:
                        outcome.skipped.append(pid)
                        continue
                    if one_by_one:
                        _chunk_until_room(session, [photo], settings, profile, task_id, outcome)
                    else:
                        claimed.append(photo)
                for start in range(0, len(claimed), settings.batch_size):
                    _chunk_until_room(
                        session, claimed[start : start + settings.batch_size], settings, profile, task_id, outcome
                    )
                pending = _stale_results(session, outcome.done, rounds)
                rounds += 1
    except Exception as exc:  # a bug outside the per-photo guards: no photo stays claimed
        if _is_transient(exc):
            raise
        released = release_claims(task_id, url, reason=_reason(exc))
        log.exception("batch failed; released %d photo(s) for another try", released)
        raise
    return outcome


def _until_room(session: Session, what: str, action: Callable[[], T]) -> T:
    """``action()``, tried again with backoff for as long as it fails because storage is full."""
    backoff = StorageBackoff(what)
    while True:
        try:
            return action()
        except Exception as exc:
            if not is_storage_full(exc):
                raise
            session.rollback()
            backoff.wait(exc)


def _chunk_until_room(
    session: Session, photos: list[Photo], settings: Settings, profile: Profile, task_id: str, outcome: Outcome
) -> None:
    """:func:`_process_chunk`, redone with backoff for the photos this task still holds when the
    storage is full (the rows it wrote before the error stay written)."""
    backoff = StorageBackoff(f"saving the results of {len(photos)} photo(s)")
    while photos:
        try:
            _process_chunk(session, photos, settings, profile, task_id, outcome)
            return
        except Exception as exc:
            if not is_storage_full(exc):
                raise
            session.rollback()
            backoff.wait(exc)
            ids = [p.id for p in photos]
            held = select(Photo).where(
                col(Photo.id).in_(ids),
                col(Photo.state) == PhotoState.PROCESSING.value,
                col(Photo.claimed_by) == task_id,
            )
            photos = list(session.exec(held).all())


def _stale_results(session: Session, done: list[int], rounds: int) -> list[int]:
    """Photos just finished against an enrolment version that changed meanwhile: re-match them."""
    if not done or rounds >= MAX_REMATCH_ROUNDS:
        return []
    current = enrolment_version(session)
    query = select(col(Photo.id)).where(col(Photo.id).in_(done), col(Photo.enrolment_version) != current)
    stale = states.requeue_for_rematch(session, [pid for pid in session.exec(query).all() if pid is not None])
    if not stale:
        return []
    session.commit()
    for pid in stale:
        done.remove(pid)
    return stale


def release_claims(task_id: str, db_url: str | None = None, reason: str | None = None) -> int:
    """Put photos this task claimed but did not finish back to ``queued`` (soft time limit, or a
    failure outside the per-photo guards: ``reason`` is kept for the final failure message)."""
    from pipeline.store.db import session_scope

    with session_scope(db_url) as session:
        return states.release(session, task_id, reason=reason)
