"""Token rows for training, built with the inference prompt code so the layouts cannot drift.

A row is ``prompt_segments(question, [name])`` + ``answer_segments(answer, [name])`` encoded in ONE
``Lvlm.encode_segments`` call (the answer is a continuation of the prompt, exactly what the model
would generate), then EOS. Labels cover the answer and EOS only.

Target ids live in an extended vocabulary: ``0 .. V-1`` the LVLM's own tokens (``V`` = the
tokenizer's size before concept tokens, ``lvlm.bank.base_vocab``), ``V`` the concept token (its
logit is ``hidden @ lm_weight``, one column per sample). Soft tokens are never targets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from pipeline.plvm.batching import left_pad
from pipeline.plvm.prompts import answer_segments, prompt_segments

if TYPE_CHECKING:
    from pipeline.plvm.lvlm import Lvlm

IGNORE = -100


@dataclass(frozen=True)
class TokenRow:
    """ids = prompt ids + answer ids + [EOS]; ``ids[:n_prompt]`` is the prompt."""

    ids: tuple[int, ...]
    n_prompt: int
    has_image: bool


@dataclass
class TokenBatch:
    """A left-padded batch (B rows, T positions), on one device.

    input_ids, attention_mask, position_ids: (B, T) as inference builds them (``left_pad``).
    slots: (B, T) long; -1 ordinary token, 0 the concept token, k >= 1 soft token k-1 (an index
        into the Aligner's (B, n_queries, D) tokens).
    targets: (B, T) long; what position t must predict (the id at t + 1) in the extended
        vocabulary, IGNORE on prompt and padding positions.
    weights: (B, T) float32; loss weight of each target (0 where IGNORE).
    first_answer: (B,) long; the position predicting the first answer token.
    has_image: per row.
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    position_ids: torch.Tensor
    slots: torch.Tensor
    targets: torch.Tensor
    weights: torch.Tensor
    first_answer: torch.Tensor
    has_image: list[bool]


class RowBuilder:
    """Encodes (question, answer, with image) into :class:`TokenRow`s for one concept name.

    Side effect on construction: registers the concept's tokens in ``lvlm.bank`` (which may grow
    the embedding matrices; the model is re-frozen afterwards) and fixes ``bank.n_soft``.
    """

    def __init__(self, lvlm: Lvlm, n_soft: int, name: str = "sks") -> None:
        bank = lvlm.bank
        if bank.n_soft is None:
            bank.n_soft = n_soft
        elif bank.n_soft != n_soft:
            raise ValueError(f"the LVLM already uses {bank.n_soft} soft tokens per concept; the Aligner makes {n_soft}")
        self.lvlm = lvlm
        self.name = name
        self.ids = bank.ids(name)
        lvlm.model.requires_grad_(False)  # a resize creates new (trainable by default) matrices
        self.base_vocab = bank.base_vocab
        self.eos_id = lvlm.tokenizer.eos_token_id
        self.yes_no = {lvlm.yes_id, lvlm.no_id}
        self._cache: dict[tuple[str, str, bool], TokenRow] = {}

    def row(self, question: str, answer: str, with_image: bool) -> TokenRow:
        """The row for one item (cached). Raises ValueError for an empty answer."""
        key = (question, answer, with_image)
        found = self._cache.get(key)
        if found is not None:
            return found
        prompt = prompt_segments(question, [self.name], with_image=with_image)
        full = prompt + answer_segments(answer, [self.name])
        prompt_ids, _ = self.lvlm.encode_segments(prompt)
        ids, _ = self.lvlm.encode_segments(full)
        if ids[: len(prompt_ids)] != prompt_ids or len(ids) == len(prompt_ids):
            raise ValueError(f"answer {answer!r} is empty or does not continue the prompt")
        row = TokenRow(tuple(ids) + (self.eos_id,), len(prompt_ids), with_image)
        self._cache[key] = row
        return row

    def target(self, token: int) -> int:
        """A token id as a target in the extended vocabulary (the concept token -> base_vocab)."""
        if token == self.ids.concept:
            return self.base_vocab
        if token >= self.base_vocab:
            raise ValueError(f"token id {token} (a soft or foreign concept token) cannot be an answer token")
        return token

    def slot(self, token: int) -> int:
        if token == self.ids.concept:
            return 0
        if token in self.ids.soft:
            return 1 + self.ids.soft.index(token)
        return -1

    def collate(
        self, rows: Sequence[TokenRow], yes_no_weight: float, other_weight: float, device: torch.device
    ) -> TokenBatch:
        """Left-pad ``rows`` and build slots, targets and weights (see :class:`TokenBatch`)."""
        input_ids, attention_mask, position_ids = left_pad([r.ids for r in rows], self.lvlm.pad_id, device)
        b, t = input_ids.shape
        slots = torch.full((b, t), -1, dtype=torch.long)
        targets = torch.full((b, t), IGNORE, dtype=torch.long)
        weights = torch.zeros((b, t), dtype=torch.float32)
        first_answer = torch.zeros(b, dtype=torch.long)
        for i, row in enumerate(rows):
            offset = t - len(row.ids)
            for j, token in enumerate(row.ids):
                slots[i, offset + j] = self.slot(token)
            for j in range(row.n_prompt, len(row.ids)):  # answer token j is predicted at position j - 1
                token = row.ids[j]
                targets[i, offset + j - 1] = self.target(token)
                weights[i, offset + j - 1] = yes_no_weight if token in self.yes_no else other_weight
            first_answer[i] = offset + row.n_prompt - 1
        return TokenBatch(
            input_ids,
            attention_mask,
            position_ids,
            slots.to(device),
            targets.to(device),
            weights.to(device),
            first_answer.to(device),
            [r.has_image for r in rows],
        )
