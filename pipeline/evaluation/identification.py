"""Closed-set identification (``pipeline eval recognition DIR --closed-set``): names, as the album gets them.

Every identity of DIR is enrolled from its reference with :func:`pipeline.people.enrolment.enroll`
(the code behind ``pipeline enroll``, in a scratch SQLite store under a temporary folder; the
user's database is never opened), then every query goes through the pipeline's own detection
(:meth:`~pipeline.recognition.faces.FaceModel.detect`), scores
(:func:`~pipeline.recognition.matching.person_scores`) and open-set naming
(:func:`~pipeline.recognition.open_set.name_faces`). A name is right when it is the query's
owner; any other name written is wrong (the release's queries name one person each).

Figures: name precision (right names / names written), recall (queries whose owner was named /
queries), F1, the wrong names with their scores, a sweep over threshold and margin (the
threshold at this gallery size), and the same figures under the plain 1:1 rule (threshold
``match_threshold``, no margin, every face nameable) to show the open-set rule's effect.
Faces profile only (names come from faces; a profile's recognition evidence is not part of this mode).
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.config import Settings
from pipeline.evaluation.metrics import Failure
from pipeline.evaluation.recognition import EvaluationError, decode_image, load_dataset
from pipeline.recognition.open_set import NamingRule

SWEEP_THRESHOLDS = tuple(round(0.30 + 0.02 * k, 2) for k in range(16))  # 0.30 ... 0.60
SWEEP_MARGINS = (0.0, 0.025, 0.05, 0.1)


@dataclass
class QueryFaces:
    """One query as the pipeline saw it: its owner, the (F, P) cosines of its faces to every
    enrolled person (columns in ``IdentificationRun.names`` order), face widths (px) and
    detector scores."""

    query: str
    owner: str
    scores: np.ndarray
    widths_px: list[float]
    det_scores: list[float]


@dataclass
class IdentificationRun:
    """The enrolled identities (``names``, by person id order), the queries' faces, failures."""

    names: list[str]
    n_identities: int
    queries: list[QueryFaces]
    failures: list[Failure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class NamingFigures:
    """Name precision/recall under one rule; ``wrong`` lists (query, owner, name, score)."""

    precision: float
    recall: float
    f1: float
    n_names: int
    n_right: int
    n_wrong_names: int
    wrong: list[dict[str, Any]]
    missed: list[str]


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def run_identification(settings: Settings, root: Path, *, progress: bool = True) -> IdentificationRun:
    """Enroll every identity of ``root`` in a scratch store and detect + score every query.

    Raises :class:`EvaluationError` for a missing/empty dataset, another profile than ``faces``,
    or when no identity could be enrolled. Side effects: a temporary folder (removed), the face
    model loads; nothing of the user's is read or written.
    """
    from tqdm import tqdm

    from pipeline.people.enrolment import enroll
    from pipeline.people.index import load_people_index
    from pipeline.people.registry import PeopleError
    from pipeline.profiles import get_profile, profile_type
    from pipeline.recognition.faces import get_face_model
    from pipeline.recognition.matching import person_scores
    from pipeline.store.db import dispose_engines, session_scope, upgrade

    if profile_type(settings.profile).gives_recognition_evidence:
        raise EvaluationError("--closed-set names faces with the faces profile; run it with --profile faces")
    dataset = load_dataset(root)
    failures: list[Failure] = []
    with tempfile.TemporaryDirectory(prefix="pipeline-eval-") as scratch:
        scratch_settings = settings.model_copy(update={"data_dir": Path(scratch), "database_url": None})
        url = scratch_settings.db_url
        upgrade(url)
        bar = tqdm(
            total=len(dataset.identities) + dataset.n_queries,
            desc="enroll + name",
            unit="img",
            file=sys.stderr,
            disable=not progress,
            leave=False,
        )
        try:
            with bar, session_scope(url) as session:
                for identity in dataset.identities:
                    try:
                        enroll(session, scratch_settings, identity.name, [identity.reference])
                    except PeopleError as error:
                        failures.append(Failure(_rel(identity.reference, root), f"not enrolled: {error}"))
                    bar.update()
                session.flush()
                index = load_people_index(session, scratch_settings, get_profile(scratch_settings))
                refs, ref_ids = index.ref_matrix
                by_id = index.by_id()
                if not index.people:
                    raise EvaluationError(
                        "no identity could be enrolled:\n  " + "\n  ".join(f.reason for f in failures)
                    )
                names = [by_id[pid].name for pid in sorted(set(ref_ids))]  # person_scores' column order
                queries: list[QueryFaces] = []
                for identity in dataset.identities:
                    for query in identity.queries:
                        image, reason = decode_image(query, settings)
                        bar.update()
                        where = _rel(query, root)
                        if image is None:
                            failures.append(Failure(where, f"cannot be decoded ({reason}); counted as a miss"))
                            queries.append(QueryFaces(where, identity.name, np.zeros((0, len(names))), [], []))
                            continue
                        faces = get_face_model().detect(np.asarray(image))
                        embs = np.stack([f.embedding for f in faces]) if faces else np.zeros((0, 128), np.float32)
                        scores, _ = person_scores(embs, refs, ref_ids)
                        queries.append(
                            QueryFaces(
                                where,
                                identity.name,
                                scores,
                                [f.box[2] * image.width for f in faces],
                                [f.score for f in faces],
                            )
                        )
        finally:
            dispose_engines()
    notes = [f"dataset problem (folder skipped): {problem}" for problem in dataset.problems]
    return IdentificationRun(names, len(dataset.identities), queries, failures, notes)


def naming_figures(run: IdentificationRun, rule: NamingRule) -> NamingFigures:
    """Name every query's faces by ``rule`` (gallery size = people enrolled) and score the names."""
    from pipeline.recognition.open_set import name_faces

    person_ids = list(range(len(run.names)))
    n_names = n_right = 0
    wrong: list[dict[str, Any]] = []
    missed: list[str] = []
    for q in run.queries:
        matches = name_faces(q.scores, person_ids, rule, face_widths_px=q.widths_px, det_scores=q.det_scores)
        given = [(run.names[m.person_id], m.score) for m in matches if m.person_id is not None]
        n_names += len(given)
        hit = False
        for name, score in given:
            if name == q.owner:
                n_right += 1
                hit = True
            else:
                wrong.append({"query": q.query, "owner": q.owner, "name": name, "score": round(float(score or 0), 4)})
        if not hit:
            missed.append(q.query)
    precision = n_right / n_names if n_names else 1.0
    recall = (len(run.queries) - len(missed)) / len(run.queries) if run.queries else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    wrong.sort(key=lambda w: -w["score"])
    return NamingFigures(precision, recall, f1, n_names, n_right, len(wrong), wrong, missed)


def identification_report(run: IdentificationRun, rule: NamingRule) -> dict[str, Any]:
    """The JSON-able report: top-level ``precision, recall, f1, n_identities, n_queries, n_names,
    n_wrong_names``, then the rule, its threshold at this gallery size, the 1:1 baseline, the
    sweep, wrong names, misses, failures and notes."""
    figures = naming_figures(run, rule)
    n = len(run.names)
    plain = NamingRule(rule.match_threshold, 0.0, 0.0, 0.0, 0.0)
    baseline = naming_figures(run, plain)
    sweep = []
    for margin in SWEEP_MARGINS:
        for threshold in SWEEP_THRESHOLDS:
            point = naming_figures(
                run, replace(rule, match_threshold=threshold, gallery_slope=0.0, match_margin=margin)
            )
            sweep.append(
                {
                    "threshold": threshold,
                    "margin": margin,
                    "precision": point.precision,
                    "recall": point.recall,
                    "f1": point.f1,
                    "n_wrong_names": point.n_wrong_names,
                }
            )
    return {
        "precision": figures.precision,
        "recall": figures.recall,
        "f1": figures.f1,
        "n_identities": run.n_identities,
        "n_enrolled": n,
        "n_queries": len(run.queries),
        "n_names": figures.n_names,
        "n_right_names": figures.n_right,
        "n_wrong_names": figures.n_wrong_names,
        "rule": asdict(rule) | {"threshold_at_gallery_size": rule.threshold(n)},
        "baseline_1to1": {k: v for k, v in asdict(baseline).items() if k not in ("missed",)} | {"rule": asdict(plain)},
        "wrong_names": figures.wrong,
        "missed": figures.missed,
        "sweep": sweep,
        "failures": [asdict(f) for f in run.failures],
        "notes": run.notes,
    }
