"""Recognition and multiple-choice scores, as the personalization papers (Yo'LLaVA and its successors) report them.

Recognition asks "is <identity> in this photo?" for every (identity, query) pair. Scores:

- positive accuracy: share of positive pairs answered yes (recall);
- negative accuracy: share of negative pairs answered no;
- weighted accuracy: the mean of the two (Yo'LLaVA's "weighted");
- precision and F1 of the yes answers.

A record carries the model's yes/no decision, a score (higher = more likely yes, e.g. P(yes)), or
both. With a threshold, scores decide (``score >= threshold`` is yes); without one, the records'
own decisions are used. When every record has a score, the report also holds a sweep over all
score cut points, the best threshold by weighted accuracy (chosen on the evaluated data itself, so
optimistic), ROC points and the AUC.

Pure computation; the table and the plot live in :mod:`pipeline.evaluation.render`.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "ConfusedPair",
    "Failure",
    "IdentityAccuracy",
    "RecognitionRecord",
    "RecognitionReport",
    "SweepPoint",
    "VqaResult",
    "auc",
    "recognition_report",
    "report_to_json",
    "roc_points",
    "threshold_sweep",
    "vqa_report",
]


@dataclass(frozen=True)
class RecognitionRecord:
    """The model's answer to "is ``identity`` in ``query``?" (``owner`` is who really is)."""

    identity: str
    query: str | Path
    owner: str
    is_positive: bool
    score: float | None = None  # higher means "yes"; any scale
    decided: bool | None = None  # the model's own yes/no, used when no threshold is given


@dataclass(frozen=True)
class Failure:
    """An image that could not be evaluated (failed to decode, no face found, ...)."""

    path: str
    reason: str


class SweepPoint(NamedTuple):
    """Scores when ``score >= threshold`` means yes."""

    threshold: float
    positive_accuracy: float
    negative_accuracy: float
    weighted_accuracy: float
    precision: float
    f1: float


@dataclass(frozen=True)
class IdentityAccuracy:
    """How one identity's questions went (NaN where it had no positive or no negative pairs)."""

    name: str
    positive_accuracy: float
    negative_accuracy: float
    weighted_accuracy: float
    n_positive: int
    n_negative: int


@dataclass(frozen=True)
class ConfusedPair:
    """``identity`` was said to be in ``count`` of the ``total`` queries owned by ``owner``."""

    identity: str
    owner: str
    count: int
    total: int


@dataclass
class RecognitionReport:
    """Everything :func:`recognition_report` measures. Rates are in [0, 1], NaN when undefined."""

    threshold: float | None
    n_pairs: int
    n_identities: int
    n_queries: int
    tp: int
    fp: int
    tn: int
    fn: int
    positive_accuracy: float
    negative_accuracy: float
    weighted_accuracy: float
    precision: float
    f1: float
    per_identity: list[IdentityAccuracy]  # worst (lowest weighted accuracy) first
    confused_pairs: list[ConfusedPair]  # most false yes first
    sweep: list[SweepPoint] = field(default_factory=list)  # ascending threshold; empty without scores
    best: SweepPoint | None = None
    roc: list[tuple[float, float]] = field(default_factory=list)  # (false positive rate, true positive rate)
    auc: float | None = None
    failures: list[Failure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # how the runner scored edge cases, for readers

    @property
    def best_threshold(self) -> float | None:
        """Threshold with the highest weighted accuracy on this data, None without scores."""
        return None if self.best is None else self.best.threshold

    def worst_identities(self, k: int = 5) -> list[IdentityAccuracy]:
        """The ``k`` identities with the lowest weighted accuracy."""
        return self.per_identity[:k]


def _rates(tp: Any, fp: Any, tn: Any, fn: Any) -> tuple[Any, Any, Any, Any, Any]:
    """(positive acc, negative acc, weighted, precision, F1) from counts; scalars or arrays.

    Positive/negative accuracy are NaN without positives/negatives; precision is 0 when nothing
    was answered yes; weighted is the mean of whichever of the two accuracies are defined.
    """
    tp, fp, tn, fn = (np.asarray(value, dtype=float) for value in (tp, fp, tn, fn))
    with np.errstate(invalid="ignore", divide="ignore"):
        positive = np.where(tp + fn > 0, tp / (tp + fn), np.nan)
        negative = np.where(tn + fp > 0, tn / (tn + fp), np.nan)
        both = np.stack([positive, negative])
        count = np.sum(~np.isnan(both), axis=0)
        weighted = np.where(count > 0, np.nansum(both, axis=0) / np.maximum(count, 1), np.nan)
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        recall = np.nan_to_num(positive)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    return positive, negative, weighted, precision, f1


def _decisions(records: Sequence[RecognitionRecord], threshold: float | None) -> list[bool]:
    decisions: list[bool] = []
    for index, record in enumerate(records):
        where = f"record {index} ({record.identity} / {record.query})"
        if record.score is not None and not math.isfinite(record.score):
            raise ValueError(f"{where} has score {record.score}: not finite")
        if threshold is not None and record.score is not None:
            decisions.append(record.score >= threshold)
        elif record.decided is not None:
            decisions.append(bool(record.decided))
        else:
            why = "a score but no decision (pass a threshold)" if record.score is not None else "no answer"
            raise ValueError(f"{where} has {why}")
    return decisions


def threshold_sweep(records: Sequence[RecognitionRecord]) -> list[SweepPoint]:
    """Scores at every distinct cut point of the records' scores, ascending.

    The thresholds are each distinct score (``score >= t`` is yes) plus one just above the
    largest, where everything is no. Returns [] when any record lacks a score.
    """
    if not records or any(record.score is None for record in records):
        return []
    scores = np.array([record.score for record in records], dtype=float)
    labels = np.array([record.is_positive for record in records], dtype=bool)
    thresholds = np.unique(scores)
    thresholds = np.append(thresholds, np.nextafter(thresholds[-1], np.inf))
    positives, negatives = np.sort(scores[labels]), np.sort(scores[~labels])
    tp = len(positives) - np.searchsorted(positives, thresholds, side="left")
    fp = len(negatives) - np.searchsorted(negatives, thresholds, side="left")
    columns = _rates(tp, fp, len(negatives) - fp, len(positives) - tp)
    return [SweepPoint(float(t), *(float(column[i]) for column in columns)) for i, t in enumerate(thresholds)]


def _best(sweep: Sequence[SweepPoint]) -> SweepPoint | None:
    """Highest weighted accuracy; ties go to the higher F1, then the lower threshold."""
    defined = [point for point in sweep if not math.isnan(point.weighted_accuracy)]
    return max(defined, key=lambda p: (p.weighted_accuracy, p.f1, -p.threshold), default=None)


def roc_points(sweep: Sequence[SweepPoint]) -> list[tuple[float, float]]:
    """(false positive rate, true positive rate) from (0, 0) to (1, 1); [] if a class is missing."""
    points = [(1.0 - p.negative_accuracy, p.positive_accuracy) for p in reversed(sweep)]
    if not points or any(math.isnan(x) or math.isnan(y) for x, y in points):
        return []
    return points


def auc(roc: Sequence[tuple[float, float]]) -> float | None:
    """Area under the ROC curve by the trapezoid rule (tied scores count half); None if empty."""
    if len(roc) < 2:
        return None
    fpr, tpr = np.array(roc).T
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2.0))


def _per_identity(records: Sequence[RecognitionRecord], decisions: Sequence[bool]) -> list[IdentityAccuracy]:
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for record, yes in zip(records, decisions, strict=True):
        kind = ("tp" if yes else "fn") if record.is_positive else ("fp" if yes else "tn")
        counts[record.identity][kind] += 1
    rows = []
    for name, c in counts.items():
        positive, negative, weighted, _, _ = _rates(c["tp"], c["fp"], c["tn"], c["fn"])
        rows.append(
            IdentityAccuracy(
                name, float(positive), float(negative), float(weighted), c["tp"] + c["fn"], c["tn"] + c["fp"]
            )
        )
    return sorted(rows, key=lambda row: (math.isnan(row.weighted_accuracy), row.weighted_accuracy, row.name))


def _confused(records: Sequence[RecognitionRecord], decisions: Sequence[bool]) -> list[ConfusedPair]:
    asked: Counter[tuple[str, str]] = Counter()
    said_yes: Counter[tuple[str, str]] = Counter()
    for record, yes in zip(records, decisions, strict=True):
        if not record.is_positive:
            asked[record.identity, record.owner] += 1
            said_yes[record.identity, record.owner] += int(yes)
    pairs = [ConfusedPair(a, b, n, asked[a, b]) for (a, b), n in said_yes.items() if n > 0]
    return sorted(pairs, key=lambda p: (-p.count, -p.count / p.total, p.identity, p.owner))


def recognition_report(
    records: Sequence[RecognitionRecord],
    threshold: float | None = None,
    failures: Iterable[Failure | tuple[str | Path, str]] = (),
) -> RecognitionReport:
    """Score recognition answers.

    Args:
        records: one per (identity, query) question; see :class:`RecognitionRecord`.
        threshold: decide by ``score >= threshold`` (records without a score use ``decided``);
            None uses each record's ``decided``.
        failures: images that could not be evaluated, as :class:`Failure` or (path, reason);
            they are listed in the report, not scored (the caller decides whether their pairs
            appear in ``records``).

    Raises:
        ValueError: no records, or a record whose answer cannot be decided.
    """
    if not records:
        raise ValueError("no recognition records to score")
    decisions = _decisions(records, threshold)
    tp = sum(1 for r, yes in zip(records, decisions, strict=True) if r.is_positive and yes)
    fn = sum(1 for r, yes in zip(records, decisions, strict=True) if r.is_positive and not yes)
    fp = sum(1 for r, yes in zip(records, decisions, strict=True) if not r.is_positive and yes)
    tn = len(records) - tp - fn - fp
    positive, negative, weighted, precision, f1 = (float(x) for x in _rates(tp, fp, tn, fn))
    sweep = threshold_sweep(records)
    roc = roc_points(sweep)
    return RecognitionReport(
        threshold=threshold,
        n_pairs=len(records),
        n_identities=len({record.identity for record in records}),
        n_queries=len({str(record.query) for record in records}),
        tp=tp,
        fp=fp,
        tn=tn,
        fn=fn,
        positive_accuracy=positive,
        negative_accuracy=negative,
        weighted_accuracy=weighted,
        precision=precision,
        f1=f1,
        per_identity=_per_identity(records, decisions),
        confused_pairs=_confused(records, decisions),
        sweep=sweep,
        best=_best(sweep),
        roc=roc,
        auc=auc(roc),
        failures=[f if isinstance(f, Failure) else Failure(str(f[0]), str(f[1])) for f in failures],
    )


def _clean(value: float | None) -> float | None:
    """JSON has no NaN: undefined rates become null."""
    return None if value is None or math.isnan(value) else float(value)


def report_to_json(report: RecognitionReport) -> dict[str, Any]:
    """A JSON-serialisable dict (``json.dumps(..., allow_nan=False)`` works); NaN becomes null."""
    return {
        "positive_accuracy": _clean(report.positive_accuracy),
        "negative_accuracy": _clean(report.negative_accuracy),
        "weighted_accuracy": _clean(report.weighted_accuracy),
        "precision": _clean(report.precision),
        "f1": _clean(report.f1),
        "n_identities": report.n_identities,
        "n_queries": report.n_queries,
        "n_pairs": report.n_pairs,
        "counts": {"tp": report.tp, "fp": report.fp, "tn": report.tn, "fn": report.fn},
        "threshold": report.threshold,
        "best_threshold": report.best_threshold,
        "best_weighted_accuracy": None if report.best is None else _clean(report.best.weighted_accuracy),
        "auc": report.auc,
        "per_identity": [
            {
                "name": row.name,
                "positive_accuracy": _clean(row.positive_accuracy),
                "negative_accuracy": _clean(row.negative_accuracy),
                "weighted_accuracy": _clean(row.weighted_accuracy),
                "n_positive": row.n_positive,
                "n_negative": row.n_negative,
            }
            for row in report.per_identity
        ],
        "confused_pairs": [
            {"identity": p.identity, "owner": p.owner, "count": p.count, "total": p.total}
            for p in report.confused_pairs
        ],
        "sweep": [{key: _clean(value) for key, value in point._asdict().items()} for point in report.sweep],
        "roc": [[x, y] for x, y in report.roc],
        "n_failures": len(report.failures),
        "failures": [{"path": f.path, "reason": f.reason} for f in report.failures],
        "notes": list(report.notes),
    }


@dataclass(frozen=True)
class VqaResult:
    """The model's pick for one multiple-choice item (``predicted`` None: no parsable answer)."""

    index: int
    text_only: bool
    correct: str
    predicted: str | None


def vqa_report(
    results: Sequence[VqaResult], failures: Iterable[Failure | tuple[str | Path, str]] = ()
) -> dict[str, Any]:
    """Multiple-choice accuracy overall, on visual items and on text-only items.

    Returns a JSON-serialisable dict: ``accuracy``, ``n_items``, ``n_correct``, ``visual_accuracy``,
    ``n_visual``, ``text_accuracy``, ``n_text``, ``n_unanswered``, ``n_failures``, ``failures``.
    An accuracy over no items is null.
    """

    def accuracy(group: list[VqaResult]) -> tuple[float | None, int, int]:
        correct = sum(1 for r in group if r.predicted is not None and r.predicted == r.correct)
        return (correct / len(group) if group else None), len(group), correct

    overall, n, n_correct = accuracy(list(results))
    visual, n_visual, _ = accuracy([r for r in results if not r.text_only])
    text, n_text, _ = accuracy([r for r in results if r.text_only])
    listed = [f if isinstance(f, Failure) else Failure(str(f[0]), str(f[1])) for f in failures]
    return {
        "accuracy": overall,
        "n_items": n,
        "n_correct": n_correct,
        "visual_accuracy": visual,
        "n_visual": n_visual,
        "text_accuracy": text,
        "n_text": n_text,
        "n_unanswered": sum(1 for r in results if r.predicted is None),
        "n_failures": len(listed),
        "failures": [{"path": f.path, "reason": f.reason} for f in listed],
    }
