"""Held-out recognition during training, through an evaluator the caller passes in.

The held-out split is laid out as identity folders (symlinks) once; every evaluation calls the
caller's :class:`HeldoutEvaluator` with an engine whose Aligner is the one being trained. The CLI
(``pipeline train``) passes the code of ``pipeline eval recognition``, so the figures are the ones
the CLI would print for a checkpoint of these weights: references encoded by DINOv2 + Aligner,
concept rows written, P(yes) of "Is <X> in this photo?" for every (identity, query) pair, threshold
from the settings. This package never imports the evaluation layer (it sits above plvm).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Protocol

from pipeline.plvm.aligner import Aligner
from pipeline.plvm.training.config import EvalPoint
from pipeline.plvm.training.data import Split, write_identity_folders


class HeldoutEvaluator(Protocol):
    """Scores one identity folder (``root/<identity>/ref_img.png`` + queries) with ``engine``.

    Returns a report with ``positive_accuracy``, ``negative_accuracy``, ``weighted_accuracy``,
    ``auc`` (floats, NaN or None when undefined), ``n_identities`` and ``n_queries`` (ints);
    e.g. ``functools.partial(pipeline.evaluation.recognition.evaluate_recognition, settings)``.
    """

    def __call__(self, root: Path, *, engine: Any, threshold: float | None, progress: bool) -> Any: ...


def prepare_eval_folders(split: Split, workdir: Path) -> dict[str, Path]:
    """{"seen": folder, "unseen": folder} for the non-empty held-out parts (side effect: writes links).

    "seen" needs two identities with held-out queries (one identity has no negatives)."""
    folders = {}
    if len(split.seen) >= 2:
        folders["seen"] = write_identity_folders(workdir / "seen", split.seen)
    if len(split.unseen) >= 2:
        folders["unseen"] = write_identity_folders(workdir / "unseen", split.unseen)
    return folders


def evaluate_heldout(
    engine: Any,
    evaluator: HeldoutEvaluator,
    aligner: Aligner,
    folders: dict[str, Path],
    step: int,
    threshold: float | None = None,
    progress: bool = False,
) -> list[EvalPoint]:
    """Evaluate every folder with the current ``aligner`` weights; returns one EvalPoint each.

    The Aligner is put in eval mode for the call and back in train mode after; the LVLM is
    re-frozen afterwards (writing concept rows may have resized its matrices).
    """
    lvlm = engine.load_lvlm()
    was_training = aligner.training
    aligner.eval()
    try:
        points = []
        for split, folder in folders.items():
            report = evaluator(folder, engine=engine, threshold=threshold, progress=progress)
            points.append(
                EvalPoint(
                    step=step,
                    split=split,
                    positive_accuracy=_float(report.positive_accuracy),
                    negative_accuracy=_float(report.negative_accuracy),
                    weighted_accuracy=_float(report.weighted_accuracy),
                    n_identities=int(report.n_identities),
                    n_queries=int(report.n_queries),
                    auc=_float(report.auc),
                )
            )
        return points
    finally:
        aligner.train(was_training)
        lvlm.model.requires_grad_(False)


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan
