"""Tagging: photo ids in, rows in the database out, whatever the profile.

A worker task calls :func:`process_photos`. It claims the rows (state
``processing``, ``attempts + 1``, committed before any model runs: the never-tried photos of the
task in one statement), then either tags each (decode, detect faces, match, describe) or
re-matches it (``work = rematch``: stored face embeddings against the current people, then redo
what depends on the people present). Results replace the photos' earlier results for the same
model version, so running a task twice changes nothing; a batch's results, its state changes and
its cluster join are written in one transaction (photo by photo when that fails, so one bad
photo fails alone).
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
from sqlalchemy import bindparam, delete, insert, update
from sqlmodel import Session, col, select

from pipeline.config import Settings
from pipeline.people.index import load_people_index
from pipeline.people.registry import enrolment_version
from pipeline.profiles import Description, PeopleIndex, Profile, Scene, get_profile
from pipeline.recognition.fusion import fused_scores
from pipeline.store import states
from pipeline.store.claim_owner import Heartbeat, this_process
from pipeline.store.models import Answer, Caption, Face, PersonScore, Photo, core_table, utcnow
from pipeline.store.states import Measured, PhotoState, WorkKind
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
    measured: Measured | None = None  # decoded for tagging here: size and time, stored with the results
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


def claim_batch(session: Session, photo_ids: list[int], task_id: str) -> list[Photo]:
    """Take every never-tried ``queued`` photo among ``photo_ids`` in one statement and one
    commit (:func:`pipeline.store.states.claim_fresh`); returns their rows in the order of
    ``photo_ids``. The others (tried before, or not queued) are left for :func:`claim`."""
    ids = states.claim_fresh(session, photo_ids, task_id, owner=this_process())
    rows: list[Photo] = []
    if ids:  # populate_existing: a row loaded in an earlier round must not keep its old work
        query = select(Photo).where(col(Photo.id).in_(ids)).execution_options(populate_existing=True)
        rows = list(session.exec(query).all())
    session.commit()
    order = {pid: i for i, pid in enumerate(photo_ids)}
    return sorted(rows, key=lambda p: order[p.id or 0])


def _finish_failed(session: Session, photo: Photo | Item, task_id: str, reason: str) -> None:
    photo_id = photo.photo_id if isinstance(photo, Item) else photo.id
    assert photo_id is not None
    states.fail(session, photo_id, task_id, reason)
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
    item.width = decoded.width
    item.measured = Measured(decoded.width, decoded.height, decoded.taken_at)  # written with the results
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


def _write(
    session: Session, done: list[tuple[Item, Description]], index: PeopleIndex, profile: Profile, task_id: str
) -> list[int]:
    """Replace these photos' results for this model version, let their new unknown faces join
    clusters, and commit, all in one transaction; returns the ids written (a photo whose claim
    was lost is left alone). If the cluster join fails, it is logged and the results are written
    without it (the faces wait for the next `pipeline clusters`)."""
    from pipeline.people.clusters import assign_new_faces

    written = _write_rows(session, done, index, profile, task_id)
    if written:
        try:
            assign_new_faces(session, written)
        except Exception as exc:
            if _is_transient(exc):
                raise
            session.rollback()  # the results too: write them again, without the join
            log.exception("joining the unknown faces of photos %s to clusters", written)
            written = _write_rows(session, done, index, profile, task_id)
    session.commit()
    return written


def _write_rows(
    session: Session, done: list[tuple[Item, Description]], index: PeopleIndex, profile: Profile, task_id: str
) -> list[int]:
    """The statements of :func:`_write` without the join and the commit: one per table and kind
    for the whole batch (Core, no ORM objects). Returns the ids whose claim this task held."""
    from pipeline.recognition.faces import embedding_to_bytes

    version = profile.model_version
    owned = set(
        states.finish_many(
            session,
            [it.photo_id for it, _ in done],
            task_id,
            profile=profile.name,
            model_version=version,
            enrolment_version=index.version,
            measured={it.photo_id: it.measured for it, _ in done if it.measured is not None},
        )
    )
    mine = [(it, desc) for it, desc in done if it.photo_id in owned]
    if not mine:
        return []
    ids = [it.photo_id for it, _ in mine]
    now = utcnow()
    faces = core_table(Face)
    tagged = [it for it, _ in mine if it.work != WorkKind.REMATCH]
    if tagged:
        session.execute(delete(faces).where(faces.c.photo_id.in_([it.photo_id for it in tagged])))
        face_rows = [
            {
                "photo_id": it.photo_id,
                "idx": idx,
                "x": face.box[0],
                "y": face.box[1],
                "w": face.box[2],
                "h": face.box[3],
                "det_score": face.det_score,
                "embedding": embedding_to_bytes(face.embedding),
                "person_id": face.person_id,
                "match_score": face.match_score,
                "evidence_score": face.evidence_score,
                "user_set": False,
            }
            for it in tagged
            for idx, face in enumerate(it.faces)
        ]
        if face_rows:
            session.execute(insert(faces), face_rows)
    renamed = [
        {"face_id": f.row_id, "new_person": f.person_id, "new_match": f.match_score, "new_evidence": f.evidence_score}
        for it, _ in mine
        if it.work == WorkKind.REMATCH
        for f in it.faces
    ]
    if renamed:
        session.execute(
            update(faces)
            .where(faces.c.id == bindparam("face_id"))
            .values(
                person_id=bindparam("new_person"),
                match_score=bindparam("new_match"),
                evidence_score=bindparam("new_evidence"),
            ),
            renamed,
        )
    with_evidence = [it for it, _ in mine if it.evidence is not None]
    if with_evidence:
        scores = core_table(PersonScore)
        session.execute(
            delete(scores).where(
                scores.c.photo_id.in_([it.photo_id for it in with_evidence]), scores.c.model_version == version
            )
        )
        session.execute(
            insert(scores),
            [
                {
                    "photo_id": it.photo_id,
                    "person_id": p.id,
                    "model_version": version,
                    "score": float(score),
                    "created_at": now,
                }
                for it in with_evidence
                for p, score in zip(index.people, it.evidence if it.evidence is not None else [], strict=True)
            ],
        )
    stamp = {"profile": profile.name, "model_version": version, "enrolment_version": index.version, "created_at": now}
    captions, answers = core_table(Caption), core_table(Answer)
    session.execute(delete(captions).where(captions.c.photo_id.in_(ids), captions.c.model_version == version))
    session.execute(delete(answers).where(answers.c.photo_id.in_(ids), answers.c.model_version == version))
    session.execute(insert(captions), [{"photo_id": it.photo_id, "text": desc.caption, **stamp} for it, desc in mine])
    answer_rows = [
        {"photo_id": it.photo_id, "question": question, "text": text, **stamp}
        for it, desc in mine
        for question, text in desc.answers.items()
    ]
    if answer_rows:
        session.execute(insert(answers), answer_rows)
    return ids


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
    _write_isolated(session, list(zip(items, descriptions, strict=True)), index, profile, task_id, outcome)


def _write_isolated(
    session: Session,
    done: list[tuple[Item, Description]],
    index: PeopleIndex,
    profile: Profile,
    task_id: str,
    outcome: Outcome,
) -> None:
    """:func:`_write` for the batch; if that fails, each photo alone, so that a photo whose rows
    cannot be written ends ``failed`` with the reason and the others are written."""
    try:
        written = _write(session, done, index, profile, task_id)
    except Exception as exc:
        if _is_transient(exc):
            raise
        session.rollback()
        if len(done) > 1:
            log.warning("writing a batch of %d failed (%s); writing photo by photo", len(done), _reason(exc))
            for one in done:
                _write_isolated(session, [one], index, profile, task_id, outcome)
            return
        item = done[0][0]
        log.exception("writing the results of photo %s", item.path)
        _finish_failed(session, item, task_id, f"could not write the results: {_reason(exc)}")
        outcome.failed.append(item.photo_id)
        return
    outcome.done.extend(written)
    outcome.skipped.extend(it.photo_id for it, _ in done if it.photo_id not in written)


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

    Photos never tried before are claimed together in one statement and run through the profile
    and written together (one transaction per ``batch_size``); photos tried before (the task was
    redelivered after its worker died, or the sweeper returned them) are claimed and run one at a
    time after them, so the one that killed the worker does not take the others' attempts with it.

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
                fresh = _until_room(session, "claiming photos", partial(claim_batch, session, pending, task_id))
                for start in range(0, len(fresh), settings.batch_size):
                    _chunk_until_room(
                        session, fresh[start : start + settings.batch_size], settings, profile, task_id, outcome
                    )
                taken = {p.id for p in fresh}
                for pid in (pid for pid in pending if pid not in taken):
                    photo, _tried = _until_room(
                        session, "claiming a photo", partial(claim, session, pid, task_id, settings)
                    )
                    if photo is None:
                        outcome.skipped.append(pid)
                    else:  # tried before: alone, so that a photo that kills its worker takes no other down
                        _chunk_until_room(session, [photo], settings, profile, task_id, outcome)
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
