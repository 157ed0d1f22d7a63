"""``pipeline eval ...`` as a user runs it: a subprocess, real face models, exit codes and files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.evaluation.test_runner import CORRUPT_QUERY, NO_FACE_QUERY, build_face_dataset

COMMAND = [sys.executable, "-m", "pipeline"]


def run_cli(*args: str, profile: str = "faces") -> subprocess.CompletedProcess[str]:
    """Run ``pipeline ARGS`` with the environment of the ``data_dir`` fixture and ``profile``."""
    env = dict(os.environ, PIPELINE_PROFILE=profile, COLUMNS="120")
    return subprocess.run([*COMMAND, *args], env=env, capture_output=True, text=True, timeout=120, cwd=REPO)


def test_eval_is_registered_on_the_app() -> None:
    from typer.main import get_command

    from pipeline.cli.main import app

    group = get_command(app).commands["eval"]  # type: ignore[attr-defined]
    assert set(group.commands) == {"recognition", "vqa"}


def test_recognition_json_and_roc(tmp_path: Path, data_dir: Path) -> None:
    root = build_face_dataset(tmp_path / "rec")
    out = tmp_path / "out" / "report.json"
    proc = run_cli("eval", "recognition", str(root), "--json", str(out), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert "weighted accuracy" in proc.stdout and "best threshold" in proc.stdout
    assert NO_FACE_QUERY in proc.stderr and CORRUPT_QUERY in proc.stderr  # failures are shown
    data = json.loads(out.read_text())
    for key in (
        "positive_accuracy",
        "negative_accuracy",
        "weighted_accuracy",
        "precision",
        "f1",
        "n_identities",
        "n_queries",
        "best_threshold",
        "sweep",
        "roc",
        "failures",
        "notes",
        "profile",
        "model_version",
    ):
        assert key in data, key
    assert (data["n_identities"], data["n_queries"], data["profile"]) == (2, 7, "faces")
    assert data["negative_accuracy"] == 1.0 and data["positive_accuracy"] == pytest.approx(6 / 7)
    assert {f["path"] for f in data["failures"]} == {NO_FACE_QUERY, CORRUPT_QUERY}
    roc = out.with_suffix(".roc.png")
    assert roc.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (data_dir / "pipeline.db").exists()  # the user's database is never touched


def test_recognition_errors_exit_1(tmp_path: Path, data_dir: Path) -> None:
    missing = run_cli("eval", "recognition", str(tmp_path / "nope"))
    assert missing.returncode == 1
    assert "error:" in missing.stderr and "does not exist" in missing.stderr
    assert "Traceback" not in missing.stderr
    (tmp_path / "empty" / "alice").mkdir(parents=True)
    empty = run_cli("eval", "recognition", str(tmp_path / "empty"))
    assert empty.returncode == 1
    assert "no usable identity" in empty.stderr and "alice: no reference image" in empty.stderr


def test_vqa_with_the_faces_profile_exits_1(tmp_path: Path, data_dir: Path) -> None:
    questions = tmp_path / "q.json"
    questions.write_text("[]")
    proc = run_cli("eval", "vqa", str(questions), "--root", str(tmp_path))
    assert proc.returncode == 1
    assert "faces profile cannot answer questions" in proc.stderr.replace("\n", " ")
