"""`pipeline models verify-aligner` and `pipeline models check` as a user runs them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import cli, flat


@pytest.mark.torch
def test_verify_aligner_released_size_and_errors(tmp_path: Path, data_dir: Path) -> None:
    import torch

    from pipeline.plvm.aligner import Aligner
    from pipeline.plvm.checkpoint import save_aligner

    path = save_aligner(Aligner(), tmp_path / "checkpoint.ckpt")
    (tmp_path / "checkpoint.ckpt.json").unlink(missing_ok=True)  # the released file has no sidecar
    proc = cli("models", "verify-aligner", str(path))
    assert "41,272,832" in proc.stdout and "4096" in proc.stdout

    state = torch.load(path, map_location="cpu")
    del state["norm_out.bias"]
    state["proj_in.weight"] = torch.zeros(768, 700)
    broken = tmp_path / "broken.ckpt"
    torch.save(state, broken)
    bad = cli("models", "verify-aligner", str(broken), check=False)
    assert bad.returncode == 1
    assert "norm_out.bias" in flat(bad.stderr) and "proj_in.weight" in flat(bad.stderr), bad.stderr


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k.startswith("PIPELINE_")}
    env.update(HF_HUB_OFFLINE="1", **extra)
    return env


@pytest.mark.torch
def test_models_check_lists_missing_weights(data_dir: Path) -> None:
    env = _env(data_dir, PIPELINE_PROFILE="plvm", PIPELINE_DINOV2_MODEL=str(data_dir / "no-dinov2"))
    proc = cli("models", "check", env=env, check=False)
    assert proc.returncode == 1
    assert "missing" in proc.stdout and "aligner.ckpt" in proc.stdout and "no-dinov2" in proc.stdout
    assert "pipeline models pull" in proc.stdout


def test_models_check_faces_profile(data_dir: Path) -> None:
    faces = cli("--profile", "faces", "models", "check", env=_env(data_dir, PIPELINE_PROFILE="plvm"))
    assert "present" in faces.stdout
