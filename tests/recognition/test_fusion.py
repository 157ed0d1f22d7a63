"""The fusion rules that combine face cosine and PLVM P(yes) (pipeline/recognition/fusion.py)."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.recognition.fusion import fused_scores
from pipeline.recognition.matching import assign_people

T, R = 0.363, 0.5
COS = np.array([[0.90, 0.10], [0.30, 0.20], [0.10, 0.05]])  # face 0: strong A; face 1: weak A; face 2: nobody


def _names(rule: str, plvm: np.ndarray | None) -> list[int | None]:
    scores = fused_scores(COS, plvm, rule, T, R)
    return [m.person_id for m in assign_people(scores, [1, 2], T)]


def test_faces_rule_ignores_plvm() -> None:
    assert _names("faces", np.array([0.99, 0.99])) == [1, None, None]
    assert _names("either", None) == [1, None, None], "no PLVM evidence: faces alone"


def test_both_needs_plvm_confirmation() -> None:
    assert _names("both", np.array([0.9, 0.9])) == [1, None, None]
    assert _names("both", np.array([0.1, 0.9])) == [None, None, None], "PLVM says no: the face stays unknown"


def test_either_lets_plvm_confirm_a_weak_face_match() -> None:
    # Person 2 (B) is confirmed by PLVM but no face resembles B enough: nobody is named B.
    assert _names("either", np.array([0.2, 0.95])) == [1, None, None]
    # A is taken by the strong face 0; the weak face 1 cannot take A too.
    assert _names("either", np.array([0.95, 0.1])) == [1, None, None]
    weak_only = np.array([[0.30, 0.10]])
    scores = fused_scores(weak_only, np.array([0.95, 0.1]), "either", T, R)
    assert [m.person_id for m in assign_people(scores, [1, 2], T)] == [1]
    scores = fused_scores(weak_only, np.array([0.40, 0.1]), "either", T, R)
    assert [m.person_id for m in assign_people(scores, [1, 2], T)] == [None]


def test_unknown_rule_and_nan_scores() -> None:
    with pytest.raises(ValueError, match="unknown fusion rule"):
        fused_scores(COS, np.array([0.5, 0.5]), "majority", T, R)
    assert _names("either", np.array([np.nan, np.nan])) == [1, None, None]
