"""Device and dtype choice from settings ("auto": CUDA + float16 when available, else CPU + float32).

Shared by everything that runs PyTorch models (the model layer, ``pipeline synth``); imports torch,
so import it only where a model is about to run.
"""

from __future__ import annotations

import torch

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def resolve_device(device: str) -> torch.device:
    """ "auto" -> cuda if available else cpu; otherwise ``torch.device(device)`` (cuda checked)."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device '{device}' requested but CUDA is not available (torch {torch.__version__})")
    return resolved


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """ "auto" -> float16 on CUDA, float32 elsewhere; otherwise the named dtype."""
    if dtype == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    if dtype not in _DTYPES:
        raise ValueError(f"dtype '{dtype}' is not one of auto, {', '.join(_DTYPES)}")
    return _DTYPES[dtype]
