"""Load, save and describe Aligner checkpoints (the released format and safetensors).

The release is a plain ``torch.save``'d state dict (``checkpoint.ckpt``). Accepted on load: that,
the same nested under ``"state_dict"`` or ``"model"``, keys with a ``module.`` prefix (DDP), or a
``.safetensors`` file. Loading is strict: any missing/unexpected key or shape mismatch raises
:class:`AlignerCheckpointError` listing all of them.

Sizes come from, in order: the ``config`` argument, a sidecar ``<path>.json`` written by
:func:`save_aligner`, or :func:`infer_config` (shapes; ``heads`` assumes ``head_dim`` = 64 since
only heads * head_dim is visible in the weights).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from pipeline.plvm.aligner import Aligner, AlignerConfig, count_parameters
from pipeline.plvm.errors import AlignerCheckpointError, MissingWeightsError

SIDECAR_SUFFIX = ".json"
DEFAULT_HEAD_DIM = 64


def missing_aligner_error(path: Path) -> MissingWeightsError:
    """The error for an absent Aligner checkpoint: where it goes and where to get it."""
    return MissingWeightsError(
        f"Aligner checkpoint not found at {path}. Download the authors' released checkpoint "
        "(checkpoint.ckpt, hosted on Google Drive and linked from the README of the GitHub repository "
        "'PLVM' by Chau Pham) and put it there, or point PIPELINE_ALIGNER_CHECKPOINT at it "
        "(default location: <data_dir>/models/aligner.ckpt); then check it with "
        "`pipeline models verify-aligner`."
    )


def sidecar_path(path: Path) -> Path:
    """``aligner.ckpt`` -> ``aligner.ckpt.json``."""
    return path.with_name(path.name + SIDECAR_SUFFIX)


def _is_safetensors(path: Path) -> bool:
    return path.suffix == ".safetensors"


def read_state_dict(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """Read a checkpoint file and return its flat Aligner state dict (unwrapped, prefix stripped).

    Raises MissingWeightsError if the file does not exist, AlignerCheckpointError if it is not a
    state dict.
    """
    path = Path(path)
    if not path.is_file():
        raise missing_aligner_error(path)
    if _is_safetensors(path):
        from safetensors.torch import load_file

        raw: Any = load_file(str(path), device=str(map_location))
    else:
        try:
            raw = torch.load(path, map_location=map_location, weights_only=True)
        except Exception as exc:  # pickle with arbitrary objects, truncated file, not a torch file
            raise AlignerCheckpointError(str(path), detail=f"cannot be read as a plain state dict ({exc})") from exc
    return _unwrap(raw, str(path))


def _unwrap(raw: Any, source: str) -> dict[str, torch.Tensor]:
    """Unnest ``state_dict``/``model`` wrappers and strip a ``module.`` prefix."""
    for _ in range(3):
        if isinstance(raw, Mapping) and "latents" not in raw:
            inner = next((raw[k] for k in ("state_dict", "model") if isinstance(raw.get(k), Mapping)), None)
            if inner is None:
                break
            raw = inner
    if not isinstance(raw, Mapping):
        raise AlignerCheckpointError(source, detail=f"expected a state dict (mapping), found {type(raw).__name__}")
    state = dict(raw)
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise AlignerCheckpointError(source, detail=f"non-tensor entries {bad[:5]}")
    return state


def infer_config(state_dict: Mapping[str, torch.Tensor], head_dim: int = DEFAULT_HEAD_DIM) -> AlignerConfig:
    """Aligner sizes from parameter shapes. ``heads`` = q width // head_dim (not visible in weights)."""
    try:
        latents = state_dict["latents"]  # (1, n_queries, width)
        q_width = state_dict["layers.0.0.to_q.weight"].shape[0]
        ff_width = state_dict["layers.0.1.1.weight"].shape[0]
        out_dim = state_dict["proj_out.weight"].shape[0]
        weight_head_width = state_dict["linear_weight_mapping.0.weight"].shape[0]
    except KeyError as exc:
        raise AlignerCheckpointError("state dict", missing=[exc.args[0]], detail="cannot infer sizes") from exc
    width = latents.shape[-1]
    depth = len({k.split(".")[1] for k in state_dict if k.startswith("layers.") and k.endswith(".0.to_q.weight")})
    if q_width % head_dim or ff_width % width:
        raise AlignerCheckpointError(
            "state dict",
            detail=f"q width {q_width} is not a multiple of head_dim {head_dim}, "
            f"or ff width {ff_width} of width {width}",
        )
    return AlignerConfig(
        width=width,
        depth=depth,
        heads=q_width // head_dim,
        head_dim=head_dim,
        n_queries=latents.shape[1],
        out_dim=out_dim,
        ff_mult=ff_width // width,
        weight_head_width=weight_head_width,
    )


def read_sidecar(path: Path) -> AlignerConfig | None:
    """The config saved next to a checkpoint by :func:`save_aligner`, if any."""
    side = sidecar_path(path)
    if not side.is_file():
        return None
    data = json.loads(side.read_text())
    return AlignerConfig.from_dict(data["config"] if "config" in data else data)


def strict_load(aligner: Aligner, state_dict: Mapping[str, torch.Tensor], source: str) -> None:
    """Copy ``state_dict`` into ``aligner``; any key or shape difference raises AlignerCheckpointError."""
    expected = aligner.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    mismatched = [
        (k, tuple(expected[k].shape), tuple(state_dict[k].shape))
        for k in sorted(set(expected) & set(state_dict))
        if expected[k].shape != state_dict[k].shape
    ]
    if missing or unexpected or mismatched:
        raise AlignerCheckpointError(source, missing, unexpected, mismatched)
    aligner.load_state_dict(dict(state_dict), strict=True)


def load_aligner(
    path: str | Path,
    config: AlignerConfig | None = None,
    map_location: str | torch.device = "cpu",
) -> Aligner:
    """Build an Aligner and load ``path`` into it strictly; returns it in eval mode on ``map_location``.

    Side effects: reads the file (and its sidecar). Raises MissingWeightsError (no file) or
    AlignerCheckpointError (unreadable or not fitting).
    """
    path = Path(path)
    state = read_state_dict(path, map_location=map_location)
    if config is None:
        config = read_sidecar(path) or infer_config(state)
    aligner = Aligner(config)
    strict_load(aligner, state, str(path))
    return aligner.to(map_location).eval()


def save_aligner(aligner: Aligner, path: str | Path) -> Path:
    """Write the released format: a plain state dict (torch.save), or safetensors for ``*.safetensors``.

    Also writes the sidecar ``<path>.json`` with the config. Returns ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in aligner.state_dict().items()}
    if _is_safetensors(path):
        from safetensors.torch import save_file

        save_file(state, str(path))
    else:
        torch.save(state, path)
    sidecar_path(path).write_text(json.dumps({"config": aligner.config.to_dict()}, indent=2) + "\n")
    return path


def file_sha256(path: str | Path, chunk_bytes: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk_bytes):
            digest.update(block)
    return digest.hexdigest()


def describe_checkpoint(path: str | Path) -> dict[str, Any]:
    """What ``pipeline models verify-aligner`` prints: loads strictly (raises on any mismatch).

    Returns {"path", "format", "sha256", "config", "config_source", "parameters"}.
    """
    path = Path(path)
    sidecar = read_sidecar(path) if path.is_file() else None
    aligner = load_aligner(path, config=sidecar)
    return {
        "path": str(path),
        "format": "safetensors" if _is_safetensors(path) else "torch",
        "sha256": file_sha256(path),
        "config": aligner.config.to_dict(),
        "config_source": "sidecar" if sidecar is not None else "inferred from shapes",
        "parameters": count_parameters(aligner),
    }
