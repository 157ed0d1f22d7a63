"""Learning-rate schedule: linear warm-up, then cosine or linear decay to ``min_ratio`` x lr."""

from __future__ import annotations

import math

import torch


def lr_factor(update: int, warmup: int, total: int, decay: str = "cosine", min_ratio: float = 0.0) -> float:
    """Multiplier of the base LR for optimizer update number ``update`` (1-based, 1..total).

    Warm-up: update / warmup for update <= warmup (the first update already moves). Then from 1
    down to ``min_ratio`` at ``total`` (cosine or linear). Past ``total``: ``min_ratio``.
    """
    if decay not in ("cosine", "linear"):
        raise ValueError(f"decay {decay!r} is not cosine or linear")
    if warmup > 0 and update <= warmup:
        return update / warmup
    span = max(1, total - warmup)
    progress = min(1.0, max(0.0, (update - warmup) / span))
    shape = 0.5 * (1 + math.cos(math.pi * progress)) if decay == "cosine" else 1 - progress
    return min_ratio + (1 - min_ratio) * shape


def make_scheduler(
    optimizer: torch.optim.Optimizer, warmup: int, total: int, decay: str = "cosine", min_ratio: float = 0.0
) -> torch.optim.lr_scheduler.LambdaLR:
    """LambdaLR stepped once per optimizer update; before update k (1-based) the LR is
    base * lr_factor(k). Its state_dict holds the position, so a resumed run continues."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda done: lr_factor(done + 1, warmup, total, decay, min_ratio)
    )
