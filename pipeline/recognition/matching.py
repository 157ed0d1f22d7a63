"""Naming faces: cosine scores against enrolled references, then one optimal assignment per photo.

Rules (docs/architecture.md, "Names are grounded on faces"):

* a person is named at most once per photo;
* a face is named only when its score to that person is at or above the threshold, otherwise
  it stays unknown; the nearest name is never forced onto it;
* a user's decisions outrank the model: ``fixed`` faces keep the person the user gave them
  (who is then unavailable to every other face), ``forbidden`` (face, person) pairs are never
  proposed.

Pure numpy/scipy; no model, no database.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Match:
    """The name given to one face.

    ``person_id`` is None for an unknown face; ``score`` is the face's cosine to the named
    person's best reference, None when the face is unknown or was fixed by a user to a person
    without a score column.
    """

    person_id: int | None
    score: float | None


UNKNOWN = Match(None, None)


def _as_2d(array: np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(array, dtype=np.float32)
    if array.ndim == 1 and array.size == 0:
        return array.reshape(0, 0)
    if array.ndim != 2:
        raise ValueError(f"{name} must be 2-D (N, D), got shape {array.shape}")
    return array


def _normalise(rows: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return rows / np.maximum(norms, 1e-12)


def cosine_matrix(faces: np.ndarray, refs: np.ndarray) -> np.ndarray:
    """Cosine similarity of every face to every reference.

    ``faces`` (F, D) and ``refs`` (R, D) embeddings (normalised here, so raw features work too;
    an all-zero row scores 0). Returns (F, R) float32. F or R may be 0.
    """
    faces, refs = _as_2d(faces, "faces"), _as_2d(refs, "refs")
    if faces.shape[0] == 0 or refs.shape[0] == 0:
        return np.zeros((faces.shape[0], refs.shape[0]), np.float32)
    if faces.shape[1] != refs.shape[1]:
        raise ValueError(f"embedding sizes differ: faces {faces.shape}, refs {refs.shape}")
    return (_normalise(faces) @ _normalise(refs).T).astype(np.float32)


def person_scores(faces: np.ndarray, refs: np.ndarray, ref_person_ids: Sequence[int]) -> tuple[np.ndarray, list[int]]:
    """Best-reference cosine of every face to every person.

    ``faces`` (F, D); ``refs`` (R, D) with ``ref_person_ids[r]`` the person of reference ``r``
    (a person may have several references). Returns the (F, P) scores, each the maximum over
    that person's references, and the P person ids in ascending order (the column order).
    """
    ids = [int(p) for p in ref_person_ids]
    cosines = cosine_matrix(faces, refs)
    if len(ids) != cosines.shape[1]:
        raise ValueError(f"{len(ids)} person ids for {cosines.shape[1]} references")
    people = sorted(set(ids))
    scores = np.empty((cosines.shape[0], len(people)), np.float32)
    owner = np.asarray(ids)
    for column, person in enumerate(people):
        scores[:, column] = cosines[:, owner == person].max(axis=1, initial=-np.inf)
    return scores, people


def assign_people(
    scores: np.ndarray,
    person_ids: Sequence[int],
    threshold: float,
    *,
    fixed: Mapping[int, int] = {},
    forbidden: Collection[tuple[int, int]] = (),
    margin: float = 0.0,
    nameable: Sequence[bool] | None = None,
) -> list[Match]:
    """Name the faces of one photo; returns one :class:`Match` per face (row of ``scores``).

    ``scores``: (F, P) face-person scores (e.g. from :func:`person_scores`), columns in the
    order of ``person_ids``. ``threshold``: a pair is eligible when its score is >= threshold
    (NaN never is). ``fixed``: face index -> person id chosen by a user; it is kept whatever the
    scores (and even when that pair is also in ``forbidden``), with the score from ``scores``
    when the person has a column, else None; a person a user fixed on several faces (possible
    after merging two people) keeps them all. ``forbidden``: (face index, person id) pairs a user
    rejected; pairs naming a person without a column are ignored. ``margin``: a pair is eligible
    only when its score beats the face's best score for any *other* person by at least
    ``margin`` (open-set identification: :mod:`pipeline.recognition.open_set`). ``nameable``:
    per face, False keeps a face unknown whatever its scores (too small or unsure a detection);
    fixed faces are kept regardless.

    The other faces get the assignment (scipy ``linear_sum_assignment``) that maximises the total
    score of eligible pairs, each person and each face used at most once; a face may stay
    unknown. So a face whose best person is taken by a better face gets its second choice only
    when that pair is eligible, and a free person is never given to a face that scores below
    threshold. Unknown counts 0, so with a negative threshold an eligible pair scoring below 0
    still leaves its face unknown. Raises ``ValueError`` on a shape mismatch, duplicate person
    ids or a face index out of range.
    """
    from scipy.optimize import linear_sum_assignment

    scores = np.asarray(scores, dtype=np.float64)
    people = [int(p) for p in person_ids]
    if scores.ndim == 1 and scores.size == 0:
        scores = scores.reshape(0, len(people))
    if scores.ndim != 2 or scores.shape[1] != len(people):
        raise ValueError(f"scores of shape {scores.shape} do not fit {len(people)} person ids")
    if len(set(people)) != len(people):
        raise ValueError("person_ids contains duplicates")
    n_faces = scores.shape[0]
    column = {person: j for j, person in enumerate(people)}

    def check_face(face: int) -> int:
        if not 0 <= int(face) < n_faces:
            raise ValueError(f"face index {face} out of range for {n_faces} faces")
        return int(face)

    result = [UNKNOWN] * n_faces
    fixed_people: set[int] = set()
    for face, person in fixed.items():
        face, person = check_face(face), int(person)
        fixed_people.add(person)  # fixed on two faces (e.g. after a merge): both are kept
        j = column.get(person)
        result[face] = Match(person, float(scores[face, j]) if j is not None else None)

    fixed_faces = {check_face(face) for face in fixed}
    rejected = [(check_face(face), int(person)) for face, person in forbidden]
    free_faces = [i for i in range(n_faces) if i not in fixed_faces]
    free_cols = [j for j, person in enumerate(people) if person not in fixed_people]
    if not free_faces or not free_cols:
        return result

    eligible = scores[np.ix_(free_faces, free_cols)] >= threshold  # False for NaN
    if margin > 0 and len(people) > 1:
        eligible &= _margins(scores)[np.ix_(free_faces, free_cols)] >= margin
    if nameable is not None:
        if len(nameable) != n_faces:
            raise ValueError(f"nameable has {len(nameable)} entries for {n_faces} faces")
        eligible &= np.asarray([bool(nameable[i]) for i in free_faces], dtype=bool)[:, None]
    face_row = {face: r for r, face in enumerate(free_faces)}
    col_pos = {j: c for c, j in enumerate(free_cols)}
    for face, person in rejected:
        r, j = face_row.get(face), column.get(person)
        if r is not None and j in col_pos:
            eligible[r, col_pos[j]] = False

    # Each face also gets its own "unknown" column worth 0, so leaving it unnamed is always
    # feasible; ineligible pairs cost -inf and are never chosen.
    n = len(free_faces)
    weights = np.full((n, len(free_cols) + n), -np.inf)
    weights[:, : len(free_cols)] = np.where(eligible, scores[np.ix_(free_faces, free_cols)], -np.inf)
    weights[np.arange(n), len(free_cols) + np.arange(n)] = 0.0
    rows, cols = linear_sum_assignment(weights, maximize=True)
    for r, c in zip(rows, cols, strict=True):
        if c < len(free_cols):
            face, j = free_faces[r], free_cols[c]
            result[face] = Match(people[j], float(scores[face, j]))
    return result


def _margins(scores: np.ndarray) -> np.ndarray:
    """(F, P) margin of each pair: its score minus the face's best score for another person
    (NaN scores count as -inf)."""
    clean = np.where(np.isnan(scores), -np.inf, scores)
    if clean.shape[1] < 2:
        return np.full(clean.shape, np.inf)
    top2 = -np.sort(-clean, axis=1)[:, :2]  # (F, 2): best and second best
    best_other = np.where(clean >= top2[:, :1], top2[:, 1:2], top2[:, :1])
    return clean - best_other
