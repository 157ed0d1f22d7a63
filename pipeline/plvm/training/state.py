"""Checkpoints (the released Aligner format) and the training state that makes ``resume`` exact.

Files, for ``out = .../aligner.ckpt``:

- ``aligner.ckpt`` + ``aligner.ckpt.json``: :func:`pipeline.plvm.checkpoint.save_aligner` (plain
  state dict + sidecar config) -- what ``pipeline models verify-aligner`` and the plvm profile load;
- ``aligner.ckpt.train-state.pt``: step, optimizer, scheduler, grad scaler, every RNG state, the
  config and the loss/eval history (``torch.load(weights_only=True)`` can read it).

Each file is written to a temporary name and renamed, so an interrupted save leaves the previous
checkpoint intact.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipeline.plvm.aligner import Aligner
from pipeline.plvm.checkpoint import save_aligner, sidecar_path

STATE_SUFFIX = ".train-state.pt"


def state_path(out: Path) -> Path:
    """``aligner.ckpt`` -> ``aligner.ckpt.train-state.pt``."""
    return Path(out).with_name(Path(out).name + STATE_SUFFIX)


def rng_state(sampler_rng: np.random.Generator) -> dict[str, Any]:
    """Every random state a run consumes (torch CPU/CUDA, numpy sampler, python)."""
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "sampler": sampler_rng.bit_generator.state,
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any], sampler_rng: np.random.Generator) -> None:
    """Inverse of :func:`rng_state` (in place)."""
    torch.set_rng_state(state["torch"])
    sampler_rng.bit_generator.state = state["sampler"]
    random.setstate(_as_python_state(state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _as_python_state(value: Any) -> tuple:
    version, internal, gauss = value
    return (version, tuple(internal), gauss)


def save_checkpoint(aligner: Aligner, out: Path, state: dict[str, Any]) -> None:
    """Write the Aligner (released format + sidecar) and the training state, each atomically."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp{out.suffix}")
    save_aligner(aligner, tmp)
    os.replace(sidecar_path(tmp), sidecar_path(out))
    os.replace(tmp, out)
    target = state_path(out)
    tmp_state = target.with_name(f".{target.name}.tmp")
    torch.save(state, tmp_state)
    os.replace(tmp_state, target)


def load_state(out: Path) -> dict[str, Any] | None:
    """The training state next to ``out``, or None when there is none."""
    path = state_path(out)
    if not path.is_file():
        return None
    return torch.load(path, map_location="cpu", weights_only=True)
