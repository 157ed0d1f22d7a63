"""Recognition and multiple-choice metrics against hand-computed numbers."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from pipeline.evaluation.metrics import (
    Failure,
    RecognitionRecord,
    VqaResult,
    recognition_report,
    report_to_json,
    threshold_sweep,
    vqa_report,
)

# Three identities; queries a1, a2 (Alice's), b1 (Bob's), c1 (Carol's): 3 x 4 = 12 pairs.
# The model's yes answers:  A: a1, b1   B: b1   C: a1
OWNERS = {"a1": "A", "a2": "A", "b1": "B", "c1": "C"}
YES = {("A", "a1"), ("A", "b1"), ("B", "b1"), ("C", "a1")}


def _decided_records() -> list[RecognitionRecord]:
    return [
        RecognitionRecord(identity, query, owner, identity == owner, decided=(identity, query) in YES)
        for identity in "ABC"
        for query, owner in OWNERS.items()
    ]


def test_hand_computed_example() -> None:
    # Positives: A-a1 yes, A-a2 no, B-b1 yes, C-c1 no -> TP 2, FN 2: positive accuracy 2/4.
    # Negatives (8): yes on A-b1 and C-a1 -> FP 2, TN 6: negative accuracy 6/8.
    # Weighted (0.5 + 0.75) / 2; precision 2 / (2 + 2); F1 2PR / (P + R) with P = R = 0.5.
    report = recognition_report(_decided_records(), threshold=None)
    assert (report.tp, report.fp, report.tn, report.fn) == (2, 2, 6, 2)
    assert report.positive_accuracy == 0.5
    assert report.negative_accuracy == 0.75
    assert report.weighted_accuracy == 0.625
    assert report.precision == 0.5
    assert report.f1 == 0.5
    assert (report.n_identities, report.n_queries, report.n_pairs) == (3, 4, 12)
    # Per identity: C pos 0/1 neg 2/3 (1/3), A pos 1/2 neg 1/2 (1/2), B pos 1/1 neg 3/3 (1).
    assert [row.name for row in report.per_identity] == ["C", "A", "B"]
    c, a, b = report.per_identity
    assert (c.positive_accuracy, c.negative_accuracy, c.n_positive, c.n_negative) == (0.0, 2 / 3, 1, 3)
    assert c.weighted_accuracy == pytest.approx(1 / 3)
    assert (a.positive_accuracy, a.negative_accuracy, b.weighted_accuracy) == (0.5, 0.5, 1.0)
    assert report.worst_identities(1) == [c]
    # A said yes to 1 of Bob's 1 queries; C to 1 of Alice's 2 (same count, lower rate: second).
    assert [(p.identity, p.owner, p.count, p.total) for p in report.confused_pairs] == [
        ("A", "B", 1, 1),
        ("C", "A", 1, 2),
    ]
    assert report.sweep == [] and report.auc is None and report.best_threshold is None


# Scores: positives 0.9, 0.8, 0.4; negatives 0.7, 0.3, 0.2, 0.1.
POSITIVE_SCORES, NEGATIVE_SCORES = [0.9, 0.8, 0.4], [0.7, 0.3, 0.2, 0.1]


def _scored(positive: list[float], negative: list[float]) -> list[RecognitionRecord]:
    records = [RecognitionRecord("A", f"a{i}", "A", True, score=s) for i, s in enumerate(positive)]
    return records + [RecognitionRecord("A", f"b{i}", "B", False, score=s) for i, s in enumerate(negative)]


def test_threshold_sweep_and_best_threshold() -> None:
    sweep = threshold_sweep(_scored(POSITIVE_SCORES, NEGATIVE_SCORES))
    assert [p.threshold for p in sweep][:-1] == [0.1, 0.2, 0.3, 0.4, 0.7, 0.8, 0.9]
    assert sweep[-1].threshold > 0.9 and sweep[-1].positive_accuracy == 0.0 and sweep[-1].negative_accuracy == 1.0
    by_threshold = {p.threshold: p for p in sweep}
    # score >= 0.4: all 3 positives yes, 1 of 4 negatives yes -> (1 + 3/4) / 2 = 0.875, the best.
    best = by_threshold[0.4]
    assert (best.positive_accuracy, best.negative_accuracy, best.weighted_accuracy) == (1.0, 0.75, 0.875)
    assert best.precision == 0.75 and best.f1 == pytest.approx(2 * 0.75 / 1.75)
    # score >= 0.8: 2/3 positives, no false yes -> 5/6, the runner-up.
    assert by_threshold[0.8].weighted_accuracy == pytest.approx(5 / 6)
    assert by_threshold[0.1].weighted_accuracy == 0.5 and by_threshold[0.1].negative_accuracy == 0.0
    report = recognition_report(_scored(POSITIVE_SCORES, NEGATIVE_SCORES), threshold=0.5)
    assert report.best_threshold == 0.4 and report.best == best
    assert (report.positive_accuracy, report.negative_accuracy) == (2 / 3, 0.75)  # 0.7 >= 0.5: a false yes
    # Pairs ranked correctly: 0.9 and 0.8 beat all 4 negatives, 0.4 beats 3 -> 11 of 12.
    assert report.auc == pytest.approx(11 / 12)
    assert report.roc[0] == (0.0, 0.0) and report.roc[-1] == (1.0, 1.0)


def test_auc_perfect_reversed_and_tied() -> None:
    perfect = recognition_report(_scored([0.9, 0.8], [0.2, 0.1]), threshold=0.5)
    reversed_ = recognition_report(_scored([0.2, 0.1], [0.9, 0.8]), threshold=0.5)
    tied = recognition_report(_scored([0.5, 0.5], [0.5, 0.5]), threshold=0.5)
    assert perfect.auc == 1.0 and reversed_.auc == 0.0 and tied.auc == 0.5
    assert perfect.best is not None and perfect.best.weighted_accuracy == 1.0


def test_sweep_agrees_with_reports_and_auc_with_rank_statistic() -> None:
    rng = np.random.default_rng(0)
    positive = list(np.round(rng.normal(0.6, 0.2, 40), 1))  # rounding makes ties
    negative = list(np.round(rng.normal(0.4, 0.2, 60), 1))
    records = _scored(positive, negative)
    for point in threshold_sweep(records):
        report = recognition_report(records, threshold=point.threshold)
        assert (report.weighted_accuracy, report.precision, report.f1) == pytest.approx(point[3:])
    wins = sum((p > n) + 0.5 * (p == n) for p in positive for n in negative)
    assert recognition_report(records, threshold=0.5).auc == pytest.approx(wins / (len(positive) * len(negative)))


def test_threshold_overrides_decisions_and_missing_answers_fail() -> None:
    record = RecognitionRecord("A", "a1", "A", True, score=0.2, decided=True)
    assert recognition_report([record], threshold=0.5).positive_accuracy == 0.0
    assert recognition_report([record], threshold=None).positive_accuracy == 1.0
    with pytest.raises(ValueError, match=r"record 0 \(A / a1\) has a score but no decision \(pass a threshold\)"):
        recognition_report([RecognitionRecord("A", "a1", "A", True, score=0.2)])
    with pytest.raises(ValueError, match="no answer"):
        recognition_report([RecognitionRecord("A", "a1", "A", True)], threshold=0.5)
    with pytest.raises(ValueError, match="has score nan: not finite"):
        recognition_report([RecognitionRecord("A", "a1", "A", True, score=float("nan"))], threshold=0.5)
    with pytest.raises(ValueError, match="no recognition records"):
        recognition_report([], threshold=0.5)


def test_json_keys_nan_and_failures() -> None:
    failures = [("photos/broken.jpg", "cannot decode"), Failure("photos/back.jpg", "no face")]
    records = _scored([0.9], [0.1])
    report = recognition_report(records, threshold=0.5, failures=failures)
    assert report.failures == [Failure("photos/broken.jpg", "cannot decode"), Failure("photos/back.jpg", "no face")]
    data = report_to_json(report)
    required = [
        "positive_accuracy",
        "negative_accuracy",
        "weighted_accuracy",
        "precision",
        "f1",
        "n_identities",
        "n_queries",
        "n_pairs",
        "threshold",
        "best_threshold",
        "auc",
        "per_identity",
        "confused_pairs",
        "sweep",
        "failures",
    ]
    assert list(data)[:7] == required[:7] and set(required) <= set(data)
    assert data["n_failures"] == 2 and data["failures"][1] == {"path": "photos/back.jpg", "reason": "no face"}
    json.dumps(data, allow_nan=False)
    # Only negatives: positive accuracy is undefined (NaN, exported as null), weighted uses the rest.
    only_negatives = recognition_report([RecognitionRecord("A", "b1", "B", False, decided=False)])
    assert math.isnan(only_negatives.positive_accuracy) and only_negatives.weighted_accuracy == 1.0
    exported = report_to_json(only_negatives)
    assert exported["positive_accuracy"] is None and exported["per_identity"][0]["positive_accuracy"] is None
    json.dumps(exported, allow_nan=False)


def test_vqa_report() -> None:
    results = [
        VqaResult(0, False, "A", "A"),
        VqaResult(1, False, "B", "B"),
        VqaResult(2, False, "C", "A"),
        VqaResult(3, True, "A", "A"),
        VqaResult(4, True, "D", None),
    ]
    report = vqa_report(results, failures=[("q.png", "cannot decode")])
    assert report["accuracy"] == 3 / 5 and report["n_items"] == 5 and report["n_correct"] == 3
    assert report["visual_accuracy"] == 2 / 3 and report["n_visual"] == 3
    assert report["text_accuracy"] == 1 / 2 and report["n_text"] == 2
    assert report["n_unanswered"] == 1 and report["n_failures"] == 1
    assert vqa_report([])["accuracy"] is None
    json.dumps(report, allow_nan=False)
