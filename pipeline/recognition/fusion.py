"""How face matches and the profile's recognition evidence combine into the scores used to name faces.

Rules (``PIPELINE_FUSION``), with face cosine ``c`` (face x person), the profile's recognition
evidence ``p`` (photo x person, a probability that the person is in the photo), match threshold
``t`` and recognition threshold ``r``:

- ``faces``: names come from ``c >= t`` alone; ``p`` is stored as evidence.
- ``both``: a face is named only when ``c >= t`` and ``p >= r``.
- ``either`` (default for a profile that gives recognition evidence): ``c >= t``, or a weaker face
  match ``c >= 0.75 t`` that the evidence confirms with ``p >= r``; genuine face matches still win
  the assignment.

Profiles without recognition evidence (``faces``) always behave as ``faces``.
"""

from __future__ import annotations

import numpy as np

WEAK_FACE_FACTOR = 0.75


def fused_scores(face_cos: np.ndarray, evidence: np.ndarray | None, rule: str, t: float, r: float) -> np.ndarray:
    """Scores for the assignment (F, P): entries >= ``t`` may name a face, others stay unknown.

    ``face_cos``: (F, P) cosine of each face to each person's best reference.
    ``evidence``: (P,) the profile's recognition evidence for this photo (probability), or None.
    """
    scores = face_cos.astype(np.float64).copy()
    if evidence is None or rule == "faces" or scores.size == 0:
        return scores
    confirmed = evidence[None, :] >= r  # (1, P)
    if rule == "both":
        return np.where(confirmed, scores, np.minimum(scores, t - 1.0))
    if rule == "either":
        weak = (scores >= WEAK_FACE_FACTOR * t) & (scores < t) & confirmed
        # A confirmed weak match is just eligible: it ranks below every genuine face match.
        return np.where(weak, t + (scores - WEAK_FACE_FACTOR * t) * 1e-3, scores)
    raise ValueError(f"unknown fusion rule {rule!r}; expected faces, both or either")
