"""Left-padded batches of token-id rows, chunking, and image features as LLaVA model inputs."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

import torch

T = TypeVar("T")


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """Consecutive slices of at most ``size`` items."""
    if size < 1:
        raise ValueError(f"chunk size must be >= 1, got {size}")
    for start in range(0, len(items), size):
        yield items[start : start + size]


def left_pad(
    rows: Sequence[Sequence[int]], pad_id: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rows of ids -> (input_ids, attention_mask, position_ids), each (B, T_max), padding on the left.

    position_ids count real tokens only (0 at each row's first real token), as ``generate`` does,
    so a row's results do not depend on how much padding its batch needed.
    """
    if not rows or any(len(r) == 0 for r in rows):
        raise ValueError("left_pad needs at least one non-empty row")
    width = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        input_ids[i, width - len(row) :] = torch.tensor(row, dtype=torch.long)
        attention_mask[i, width - len(row) :] = 1
    position_ids = (attention_mask.cumsum(-1) - 1).masked_fill(attention_mask == 0, 0)  # (B, T)
    return input_ids.to(device), attention_mask.to(device), position_ids.to(device)


def image_feature_inputs(features: Sequence[torch.Tensor | None]) -> dict[str, Any]:
    """``mm_encoder_outputs`` for the rows that have image features (row order kept; each (N, H),
    the vision tower + projector output), so ``LlavaModel`` does not run its vision tower again;
    {} when no row has an image. Used by inference and training alike."""
    from transformers.modeling_outputs import BaseModelOutputWithPooling

    rows = [f for f in features if f is not None]
    if not rows:
        return {}
    pooled = BaseModelOutputWithPooling(
        pooler_output=rows,  # type: ignore[arg-type]  # typed Tensor, but LlavaModel reads (and sets) a list
    )
    return {"mm_encoder_outputs": {"image": pooled}}
