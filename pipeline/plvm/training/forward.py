"""The differentiable LVLM pass: Aligner outputs in the concept/soft positions, frozen everything else.

Inference writes a person's rows into the embedding matrix and the LM head; training must not
(the rows would not carry gradients, and in-place writes into frozen weights are wrong). Instead:

- input embeddings: the frozen table's rows (no grad), with the concept/soft positions replaced by
  the Aligner's tokens via ``torch.where`` (gradient flows into the tokens only);
- image rows: the frozen vision tower + projector features, handed to ``LlavaModel`` as
  ``mm_encoder_outputs`` exactly as :class:`~pipeline.plvm.lvlm.Lvlm` does at inference;
- logits, only at positions that have a target: ``hidden @ W_head[:V].T`` for the LVLM's own
  vocabulary plus one appended column ``hidden @ lm_weight`` per sample for the concept token --
  the same numbers inference gets from the written LM-head row with the logit bias masking every
  other added token.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from pipeline.plvm.batching import image_feature_inputs
from pipeline.plvm.training.rows import IGNORE, TokenBatch

if TYPE_CHECKING:
    from pipeline.plvm.lvlm import Lvlm


@dataclass
class AnswerLogits:
    """Logits at the N target positions of a batch.

    logits: (N, V + 1) float32 (column V: the concept token); targets: (N,) long; weights: (N,)
    float32; rows: (N,) long, the batch row of each; first: (N,) bool, True where the position
    predicts its row's first answer token.
    """

    logits: torch.Tensor
    targets: torch.Tensor
    weights: torch.Tensor
    rows: torch.Tensor
    first: torch.Tensor


def embed_with_concepts(lvlm: Lvlm, batch: TokenBatch, tokens: torch.Tensor) -> torch.Tensor:
    """(B, T, D) input embeddings: the frozen table's rows, concept/soft positions from ``tokens``
    (B, n_queries, D). Differentiable in ``tokens`` only; the table is never written."""
    table = lvlm.model.get_input_embeddings()
    with torch.no_grad():
        base = table(batch.input_ids)  # (B, T, D)
    d = base.shape[-1]
    index = batch.slots.clamp(min=0).unsqueeze(-1).expand(-1, -1, d)  # (B, T, D)
    picked = torch.gather(tokens.to(base.dtype), 1, index)  # (B, T, D)
    return torch.where((batch.slots >= 0).unsqueeze(-1), picked, base)


def answer_logits(
    lvlm: Lvlm,
    batch: TokenBatch,
    tokens: torch.Tensor,
    lm_weight: torch.Tensor,
    image_features: Sequence[torch.Tensor | None],
) -> AnswerLogits:
    """Run the frozen LVLM on ``batch`` with the Aligner outputs ``tokens`` (B, n_queries, D) and
    ``lm_weight`` (B, D); ``image_features``: per row, (n_image_tokens, D) or None (text only).

    Returns the logits at every target position (see :class:`AnswerLogits`), in float32.
    """
    embeds = embed_with_concepts(lvlm, batch, tokens)  # (B, T, D)
    hidden = lvlm.model.model(
        inputs_embeds=embeds,
        attention_mask=batch.attention_mask,
        position_ids=batch.position_ids,
        use_cache=False,
        **image_feature_inputs(image_features),
    ).last_hidden_state  # (B, T, D)
    keep = batch.targets != IGNORE  # (B, T)
    rows = keep.nonzero()[:, 0]  # (N,)
    h = hidden[keep]  # (N, D)
    head = lvlm.model.get_output_embeddings()
    vocab = lvlm.bank.base_vocab
    bias = head.bias[:vocab] if getattr(head, "bias", None) is not None else None
    base = F.linear(h, head.weight[:vocab].to(h.dtype), bias)  # (N, V)
    concept = (h * lm_weight.to(h.dtype)[rows]).sum(-1, keepdim=True)  # (N, 1)
    logits = torch.cat([base, concept], dim=-1).float()  # (N, V + 1)
    positions = keep.nonzero()[:, 1]
    first = positions == batch.first_answer[rows]
    return AnswerLogits(logits, batch.targets[keep], batch.weights[keep], rows, first)
