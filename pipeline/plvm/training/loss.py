"""Answer-token loss: cross-entropy on answer tokens only, weighted per token; yes/no accuracy."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from pipeline.plvm.training.forward import AnswerLogits


def weighted_answer_loss(out: AnswerLogits) -> torch.Tensor:
    """sum(w_i * CE_i) / sum(w_i) over the N target positions (prompt positions have no target and
    so weigh nothing); a scalar float32. 0 (with a graph) when every weight is 0."""
    ce = F.cross_entropy(out.logits, out.targets, reduction="none")  # (N,)
    total = out.weights.sum()
    return (ce * out.weights).sum() / total.clamp(min=1e-8)


def yes_no_correct(out: AnswerLogits, yes_id: int, no_id: int) -> tuple[int, int]:
    """(correct, counted) over rows whose first answer token is " Yes" or " No": correct when the
    logit of the right one beats the other (the sign of the recognition score P(yes) - 0.5)."""
    mask = out.first & ((out.targets == yes_id) | (out.targets == no_id))
    if not bool(mask.any()):
        return 0, 0
    logits = out.logits[mask]
    said_yes = logits[:, yes_id] > logits[:, no_id]
    is_yes = out.targets[mask] == yes_id
    return int((said_yes == is_yes).sum()), int(mask.sum())
