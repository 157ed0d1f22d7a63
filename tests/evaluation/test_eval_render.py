"""The terminal table and the ROC plot."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from rich.table import Table

from pipeline.evaluation.metrics import RecognitionRecord, recognition_report
from pipeline.evaluation.render import render_table, render_text, save_roc_png


def _records() -> list[RecognitionRecord]:
    scores = {("A", "a1"): 0.9, ("A", "b1"): 0.6, ("B", "a1"): 0.3, ("B", "b1"): 0.8, ("B", "b2"): 0.2}
    scores[("A", "b2")] = 0.1
    owners = {"a1": "A", "b1": "B", "b2": "B"}
    return [RecognitionRecord(i, q, owners[q], i == owners[q], score=s) for (i, q), s in scores.items()]


def test_roc_png_is_a_valid_png(tmp_path: Path) -> None:
    report = recognition_report(_records(), threshold=0.5)
    path = save_roc_png(report, tmp_path / "plots" / "roc.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size == (450, 450)


def test_roc_png_needs_scores(tmp_path: Path) -> None:
    report = recognition_report([RecognitionRecord("A", "a1", "A", True, decided=True)])
    with pytest.raises(ValueError, match="no ROC curve"):
        save_roc_png(report, tmp_path / "roc.png")
    assert not (tmp_path / "roc.png").exists()


def test_table_lists_scores_worst_identities_and_confusions() -> None:
    report = recognition_report(_records(), threshold=0.5, failures=[("x.jpg", "no face")])
    assert isinstance(render_table(report), Table)
    text = render_text(report)
    # Positives a1 (0.9 yes), b1 (0.8 yes), b2 (0.2 no): 2/3; negatives: A-b1 0.6 yes -> 2/3.
    assert "66.7%" in text and "score >= 0.5" in text
    assert "confused: A on B's photos" in text and "1/2" in text
    assert "worst: B" in text and "failed images" in text
    assert "\x1b[" not in text
