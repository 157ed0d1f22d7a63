"""Run the recognition benchmark (the release's identity folders, Yo'LLaVA/MyVLM style) with any model profile.

No database is opened or written: the faces profile uses the process's face model directly; a
profile that gives recognition evidence is asked for its scorer
(:meth:`~pipeline.profiles.base.Profile.recognition_scorer`), whose per-person data lives in memory.
Every image is decoded and its features computed once:

- faces: YuNet + SFace on every reference and every query (one ``detect`` call per image). A
  query's score for identity X is the highest cosine between any face in the query and X's
  reference face. A reference uses its only or dominant face, as ``pipeline enroll`` does (a
  note says so; with several faces of similar size the identity scores 'no' everywhere).
- a profile with recognition evidence: one ``scorer.encode(references)`` per identity, then one
  batched ``scorer.scores(queries, all identities)`` per group of queries, so N identities x M
  queries cost about M / ``queries_per_call`` model calls.

Edge cases, never dropped silently (each is listed in ``report.failures``, explained in
``report.notes``):

- an image that cannot be decoded is not scored; a query's pairs are left out, a reference's
  identity is not asked about (its queries still serve as negatives for the others);
- faces: a decodable query without a face is scored :data:`NO_FACE_SCORE` (= "no") for every
  identity, so it costs its owner a miss; a reference without a face scores every query
  :data:`NO_FACE_SCORE` for that identity.

Every profile gives scores (cosine, or its evidence), so the report has the threshold sweep, best
threshold and ROC from :mod:`pipeline.evaluation.metrics`.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.config import Settings
from pipeline.datasets.release import Identity, IdentityDataset, load_identity_folders
from pipeline.errors import PipelineError
from pipeline.evaluation.metrics import Failure, RecognitionRecord, RecognitionReport, recognition_report

if TYPE_CHECKING:
    from PIL import Image

__all__ = [
    "NO_FACE_SCORE",
    "EvaluationError",
    "RecognitionRun",
    "decode_image",
    "evaluate_recognition",
    "load_dataset",
    "score_recognition",
]

#: Score of a (query, identity) pair the faces profile cannot compare (no face on either side):
#: the lowest cosine, so it is "no" at every threshold above -1.
NO_FACE_SCORE = -1.0


class EvaluationError(PipelineError):
    """Data or settings that make an evaluation impossible; the message says why and what to fix."""


@dataclass
class RecognitionRun:
    """Raw output of :func:`score_recognition`, before any threshold is applied.

    ``records``: one per scored (identity, query) pair, ``score`` set (cosine or the profile's evidence),
    ``query`` the path relative to the dataset root (POSIX). ``failures``: images not (fully)
    scored. ``notes``: readable lines on how edge cases were scored. ``threshold``: the profile's
    configured decision threshold. ``model_version``: what produced the scores.
    """

    profile: str
    records: list[RecognitionRecord]
    failures: list[Failure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    threshold: float = 0.5
    model_version: str = ""


def load_dataset(root: Path) -> IdentityDataset:
    """The identity folders under ``root``.

    Raises:
        EvaluationError: ``root`` is missing or not a folder, or holds no usable identity (the
            message lists every problem found).
    """
    try:
        dataset = load_identity_folders(Path(root))
    except FileNotFoundError as error:
        raise EvaluationError(str(error)) from None
    if not dataset.identities:
        listed = "\n  ".join(dataset.problems)
        raise EvaluationError(f"no usable identity in {root}:\n  {listed}")
    return dataset


def decode_image(path: Path, settings: Settings) -> tuple[Image.Image | None, str | None]:
    """(RGB image with EXIF orientation applied, None) or (None, readable reason); never raises
    for a bad file. ``settings.max_image_pixels`` guards against decompression bombs."""
    from pipeline.photos.decode import PhotoError, decode_photo

    try:
        return decode_photo(path, settings.max_image_pixels).image, None
    except PhotoError as error:
        return None, str(error.reason)


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _progress(total: int, desc: str, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="img", file=sys.stderr, disable=not enabled, leave=False)


def _references(
    identity: Identity, settings: Settings, root: Path, run: RecognitionRun
) -> list[tuple[Path, Image.Image]]:
    """(path, image) of the identity's decodable reference images (every ``ref_img*``); each failure
    is listed in ``run.failures``."""
    images = []
    for path in identity.references:
        image, reason = decode_image(path, settings)
        if image is None:
            left = "identity not evaluated" if len(identity.references) == 1 else "the other references are used"
            run.failures.append(Failure(_rel(path, root), f"reference cannot be decoded ({reason}); {left}"))
        else:
            images.append((path, image))
    return images


def _queries(dataset: IdentityDataset) -> Iterator[tuple[Identity, Path]]:
    for owner in dataset.identities:
        for query in owner.queries:
            yield owner, query


# --- faces ---------------------------------------------------------------------------------


def _score_faces(settings: Settings, dataset: IdentityDataset, progress: bool) -> RecognitionRun:
    from pipeline.recognition.faces import EMBEDDING_SIZE, get_face_model
    from pipeline.recognition.matching import cosine_matrix
    from pipeline.recognition.reference_face import dominant_face

    model, root = get_face_model(), dataset.root
    run = RecognitionRun("faces", [], threshold=settings.match_threshold, model_version=model.version)
    names: list[str] = []
    refs: list[np.ndarray | None] = []  # (128,) or None when no reference of the identity has a face
    owners: list[int] = []  # identity index of each reference embedding
    bar = _progress(len(dataset.identities) + dataset.n_queries, "faces: detect + embed", progress)
    with bar:
        for identity in dataset.identities:
            images = _references(identity, settings, root, run)
            bar.update()
            if not images:
                continue
            names.append(identity.name)
            found = 0
            for path, ref_image in images:
                where = _rel(path, root)
                faces = get_face_model().detect(np.asarray(ref_image))
                chosen = dominant_face(faces)
                if chosen is None:
                    what = (
                        "no face" if not faces else f"{len(faces)} faces of similar size (`pipeline enroll` would ask)"
                    )
                    run.failures.append(Failure(where, f"{what} in the reference; not used for {identity.name}"))
                    continue
                if len(faces) > 1:
                    run.notes.append(f"{where}: {len(faces)} faces in the reference; the dominant one was used")
                refs.append(chosen.embedding)
                owners.append(len(names) - 1)
                found += 1
            if not found:
                refs.append(None)
                owners.append(len(names) - 1)
                run.failures.append(
                    Failure(
                        identity.name, f"no usable reference face; every query scored 'no' (score {NO_FACE_SCORE:g})"
                    )
                )
        if not names:
            raise EvaluationError("no reference image could be decoded; nothing to evaluate")
        ref_matrix = np.stack([r if r is not None else np.zeros(EMBEDDING_SIZE, np.float32) for r in refs])  # (R, 128)
        owner_of = np.array(owners)  # (R,)
        has_ref = np.array([any(refs[j] is not None for j in np.flatnonzero(owner_of == i)) for i in range(len(names))])
        n_faceless = 0
        for owner, query in _queries(dataset):
            image, reason = decode_image(query, settings)
            bar.update()
            where = _rel(query, root)
            if image is None:
                run.failures.append(Failure(where, f"query cannot be decoded ({reason}); not scored"))
                continue
            faces = get_face_model().detect(np.asarray(image))
            if faces:
                cosines = cosine_matrix(np.stack([f.embedding for f in faces]), ref_matrix).max(axis=0)  # (R,)
                best = np.array([cosines[owner_of == i].max() for i in range(len(names))])  # (N,)
                scores = np.where(has_ref, best, NO_FACE_SCORE)  # (N,)
            else:
                scores = np.full(len(names), NO_FACE_SCORE)
                n_faceless += 1
                run.failures.append(
                    Failure(where, f"no face found; scored 'no' (score {NO_FACE_SCORE:g}) for every identity")
                )
            for name, score in zip(names, scores, strict=True):
                run.records.append(RecognitionRecord(name, where, owner.name, name == owner.name, score=float(score)))
    if not (has_ref.all() and n_faceless == 0):
        run.notes.append(
            f"faces profile: an image without a face is kept and scored {NO_FACE_SCORE:g} ('no') "
            "for every identity it is compared with, so it counts as a miss for its owner"
        )
    run.notes.append(
        "faces profile: score = highest cosine between any face in the query and any of the identity's "
        "reference faces (every ref_img*)"
    )
    return run


# --- a profile's recognition evidence --------------------------------------------------------


def _score_evidence(
    settings: Settings, dataset: IdentityDataset, engine: Any, progress: bool, queries_per_call: int | None
) -> RecognitionRun:
    from pipeline.profiles import profile_type

    scorer = profile_type(settings.profile).recognition_scorer(settings, engine)
    root = dataset.root
    run = RecognitionRun(
        settings.profile,
        [],
        threshold=settings.recognition_threshold,
        model_version=scorer.version_or(f"{settings.profile}:unsaved-aligner"),
    )
    names: list[str] = []
    people: list[Any] = []  # the profile's per-person data, one per identity with a decodable reference
    bar = _progress(len(dataset.identities) + dataset.n_queries, f"{settings.profile}: recognition", progress)
    with bar:
        for identity in dataset.identities:
            images = _references(identity, settings, root, run)
            bar.update()
            if not images:
                continue
            people.append(scorer.encode([im for _, im in images]))
            names.append(identity.name)
        if not people:
            raise EvaluationError("no reference image could be decoded; nothing to evaluate")
        per_call = queries_per_call or max(1, scorer.rows_per_call // len(people))
        pending: list[tuple[Identity, str, Image.Image]] = []

        def flush() -> None:
            scores = np.asarray(scorer.scores([p[2] for p in pending], people))  # (b, N)
            for (owner, where, _), row in zip(pending, scores, strict=True):
                for name, score in zip(names, row, strict=True):
                    run.records.append(
                        RecognitionRecord(name, where, owner.name, name == owner.name, score=float(score))
                    )
            bar.update(len(pending))
            pending.clear()

        for owner, query in _queries(dataset):
            image, reason = decode_image(query, settings)
            if image is None:
                bar.update()
                run.failures.append(Failure(_rel(query, root), f"query cannot be decoded ({reason}); not scored"))
                continue
            pending.append((owner, _rel(query, root), image))
            if len(pending) >= per_call:
                flush()
        if pending:
            flush()
    run.notes.append(f"{settings.profile} profile: {scorer.score_note}")
    if scorer.random_weights:
        run.notes.append("random weights (tiny test bundle): these figures are meaningless")
    return run


# --- public entry points ---------------------------------------------------------------------


def score_recognition(
    settings: Settings,
    root: Path,
    *,
    engine: Any = None,
    progress: bool = True,
    queries_per_call: int | None = None,
) -> RecognitionRun:
    """Score every (identity, query) pair of the identity folders under ``root``.

    Args:
        settings: ``profile`` picks the model; ``max_image_pixels`` guards decoding.
        root: one folder per identity (``NAME/ref_img.*``, ``NAME/query_img*``).
        engine: profiles with recognition evidence only: the profile's model object to use (e.g. one
            being trained; put it in eval mode first) or a scorer from its ``recognition_scorer``;
            else one is built from ``settings``.
        progress: show a progress bar on stderr.
        queries_per_call: query images per ``scorer.scores`` call (each call scores them against
            every identity); default ``max(1, scorer.rows_per_call // N)``.

    Returns:
        The per-pair scores, failures and notes; no threshold is applied yet.

    Raises:
        EvaluationError: missing/empty dataset, or no reference/query could be used.
        pipeline.errors.PipelineError: the profile's weights missing (message names the fix).

    Side effects: loads the profile's models; reads the images; writes nothing.
    """
    dataset = load_dataset(root)
    from pipeline.profiles import profile_type

    if not profile_type(settings.profile).gives_recognition_evidence:
        run = _score_faces(settings, dataset, progress)
    else:
        run = _score_evidence(settings, dataset, engine, progress, queries_per_call)
    run.notes[:0] = [f"dataset problem (folder skipped): {problem}" for problem in dataset.problems]
    if not run.records:
        raise EvaluationError(
            f"no query image of {root} could be scored; see the failures:\n  "
            + "\n  ".join(f"{f.path}: {f.reason}" for f in run.failures)
        )
    return run


def evaluate_recognition(
    settings: Settings,
    root: Path,
    *,
    engine: Any = None,
    threshold: float | None = None,
    progress: bool = True,
    queries_per_call: int | None = None,
) -> RecognitionReport:
    """Run the recognition benchmark on ``root`` with ``settings.profile`` and score it.

    Decisions are ``score >= threshold``; the threshold defaults to ``settings.match_threshold``
    (faces, cosine) or ``settings.recognition_threshold`` (a profile's evidence). The report also
    holds the sweep over all thresholds, the best one on this data, the ROC and AUC, the
    failures and notes. See :func:`score_recognition` for the arguments, errors and side effects.
    """
    run = score_recognition(settings, root, engine=engine, progress=progress, queries_per_call=queries_per_call)
    report = recognition_report(
        run.records, threshold=run.threshold if threshold is None else threshold, failures=run.failures
    )
    report.notes = list(run.notes)
    return report
