"""The faces profile needs no PyTorch: with torch made unimportable (``tests/torchless``), every test
module still imports, and the faces-only tests pass, the demo's end-to-end run included (sample album,
enroll, a real worker tagging the photos, SQL)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO, WITHOUT_TORCH

# Faces-only tests that cover the user's path end to end; they run again here without PyTorch.
FACES_ONLY = [
    "tests/service/test_end_to_end.py::test_sample_album_until_idle",
    "tests/cli/test_models_cli.py",
]


def _without_torch(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **WITHOUT_TORCH}
    return subprocess.run(
        [sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def test_the_blocker_hides_torch() -> None:
    proc = _without_torch("-c", "import torch", timeout=60)
    assert proc.returncode == 1 and "No module named 'torch'" in proc.stderr, proc.stderr


def test_every_test_module_imports_without_torch() -> None:
    proc = _without_torch("-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "tests", timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "error" not in proc.stdout.splitlines()[-1], proc.stdout[-2000:]


@pytest.mark.slow
def test_faces_only_tests_pass_without_torch() -> None:
    proc = _without_torch("-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", *FACES_ONLY, timeout=900)
    summary = proc.stdout.splitlines()[-1] if proc.stdout else ""
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    assert " passed" in summary and "skipped" in summary, summary  # the tiny-PLVM cases are skipped, not run
