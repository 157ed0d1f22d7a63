"""pipeline.recognition.open_set and the margin/nameable parts of the assignment (pure numpy)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipeline.config import Settings
from pipeline.recognition.matching import assign_people
from pipeline.recognition.open_set import NamingRule, name_faces


def test_threshold_rises_with_the_log_of_the_gallery() -> None:
    rule = NamingRule(match_threshold=0.363, gallery_slope=0.025)
    assert rule.threshold(0) == rule.threshold(1) == pytest.approx(0.363)
    assert rule.threshold(46) == pytest.approx(0.363 + 0.025 * math.log(46))  # 0.459: above 0.37-0.42
    assert rule.threshold(1000) > rule.threshold(46) > rule.threshold(3)


def test_rule_reads_the_settings() -> None:
    settings = Settings(match_threshold=0.4, gallery_slope=0.01, match_margin=0.2, min_face_px=30, min_face_score=0.8)
    assert NamingRule.from_settings(settings) == NamingRule(0.4, 0.01, 0.2, 30, 0.8)


def test_margin_leaves_a_face_between_two_people_unknown() -> None:
    scores = np.array([[0.62, 0.58], [0.70, 0.20]])
    plain = assign_people(scores, [1, 2], 0.363)
    assert [m.person_id for m in plain] == [2, 1]  # the assignment gives face 0 its second choice
    strict = assign_people(scores, [1, 2], 0.363, margin=0.1)
    assert [m.person_id for m in strict] == [None, 1]  # 0.62 vs 0.58: too close to call
    # A tie is never named; a single column has no second best.
    assert assign_people(np.array([[0.8, 0.8]]), [1, 2], 0.3, margin=0.01)[0].person_id is None
    assert assign_people(np.array([[0.8]]), [1], 0.3, margin=0.5)[0].person_id == 1


def test_unnameable_faces_stay_unknown_but_user_fixes_hold() -> None:
    scores = np.array([[0.9, 0.1], [0.1, 0.9]])
    matches = assign_people(scores, [1, 2], 0.363, nameable=[False, True], fixed={0: 1})
    assert [m.person_id for m in matches] == [1, 2]
    matches = assign_people(scores, [1, 2], 0.363, nameable=[False, True])
    assert [m.person_id for m in matches] == [None, 2]
    with pytest.raises(ValueError, match="nameable"):
        assign_people(scores, [1, 2], 0.363, nameable=[True])


def test_name_faces_applies_size_score_gallery_and_margin() -> None:
    rule = NamingRule(match_threshold=0.363, gallery_slope=0.025, match_margin=0.1, min_face_px=20, min_face_score=0.7)
    scores = np.array([[0.42, 0.05], [0.05, 0.80], [0.9, 0.1], [0.1, 0.95]])
    matches = name_faces(
        scores, [1, 2], rule, face_widths_px=[80, 80, 12, 80], det_scores=[0.9, 0.9, 0.9, 0.65], n_people=46
    )
    # 0.42 < t(46) = 0.459; face 1 fine; face 2 too small (12 px); face 3 detected unsurely.
    assert [m.person_id for m in matches] == [None, 2, None, None]
    small_gallery = name_faces(scores[:1], [1, 2], rule, face_widths_px=[80], det_scores=[0.9])
    assert small_gallery[0].person_id == 1  # t(2) = 0.380
