"""Concept rows in the LVLM: one concept token + n_soft soft tokens per person, written in place.

The tokenizer gets special tokens ``<Name>`` and ``<Name_soft_i>`` the first time a name is seen
(ids stay fixed for the process, so a name's rows are reused by every later request). The input
embedding matrix and LM head must have a row for every id; when the tokenizer outgrows them they
are resized ONCE for room for ``grow_concepts`` more people (one copy of the vocabulary matrix per
``grow_concepts`` new names, never per request). Each request then only overwrites its people's
rows: input rows = Aligner tokens, LM-head row of the concept token = lm_weight, LM-head rows of
soft tokens = 0 (and masked by :meth:`ConceptBank.logit_bias`).

Not thread-safe: callers serialise requests (rows are shared model state).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from pipeline.plvm.embeddings import ConceptEmbedding
from pipeline.plvm.prompts import concept_token, soft_tokens

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


@dataclass(frozen=True)
class ConceptIds:
    """Token ids of one person: the concept token and its soft tokens (in order)."""

    concept: int
    soft: tuple[int, ...]


class ConceptBank:
    """Owns the tokenizer entries and the embedding/LM-head rows of concept and soft tokens."""

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        n_soft: int | None = None,
        grow_concepts: int = 32,
    ) -> None:
        """n_soft: soft tokens per concept (None: from the first concept written); grow_concepts: people
        per resize of the embedding/LM-head matrices."""
        self.model = model
        self.tokenizer = tokenizer
        self.n_soft = n_soft  # None: taken from the first concept written (n_tokens - 1)
        self.grow_concepts = grow_concepts
        self.base_vocab = len(tokenizer)  # ids >= base_vocab are concept/soft tokens (or unused padding rows)
        self._ids: dict[str, ConceptIds] = {}  # concept token string -> ids
        emb, head = self._matrices()
        if emb.data_ptr() == head.data_ptr():
            raise ValueError("the LVLM ties its input embeddings and LM head; concept rows need them untied")

    def _matrices(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(input embedding weight (V_in, H), LM-head weight (V_out, H))."""
        emb = self.model.get_input_embeddings().weight
        head = self.model.get_output_embeddings().weight
        # both are embedding/linear weights (Parameters); torch types Module attributes as Tensor | Module
        assert isinstance(emb, torch.Tensor) and isinstance(head, torch.Tensor)
        return emb, head

    @property
    def vocab_rows(self) -> int:
        """Rows of the LM head = width of the logits."""
        return int(self._matrices()[1].shape[0])

    def ids(self, name: str) -> ConceptIds:
        """Ids of ``name``'s tokens, registering them (and growing the matrices) on first use."""
        token = concept_token(name)
        found = self._ids.get(token)
        if found is not None:
            return found
        if self.n_soft is None:
            raise RuntimeError(f"no concept written yet, so the number of soft tokens is unknown (asked for {name!r})")
        from tokenizers import AddedToken

        strings = [token, *soft_tokens(name, self.n_soft)]
        self.tokenizer.add_tokens([AddedToken(s, special=True, normalized=False) for s in strings], special_tokens=True)
        ids = self.tokenizer.convert_tokens_to_ids(strings)
        assert isinstance(ids, list)  # a list of tokens gives a list of ids
        found = ConceptIds(concept=ids[0], soft=tuple(ids[1:]))
        self._ensure_rows(max(ids) + 1)
        self._ids[token] = found
        return found

    def _ensure_rows(self, needed: int) -> None:
        emb, head = self._matrices()
        if needed <= min(emb.shape[0], head.shape[0]):
            return
        assert self.n_soft is not None  # ids() checks it before it asks for rows
        new_rows = max(needed, emb.shape[0] + self.grow_concepts * (1 + self.n_soft))
        with torch.inference_mode(False):  # new weights must stay writable outside inference mode
            self.model.resize_token_embeddings(new_rows, mean_resizing=False)

    def write(self, people: Mapping[str, ConceptEmbedding]) -> dict[int, str]:
        """Write each person's rows; returns {concept id: display name}.

        Raises ValueError if a concept's shape does not fit (n_soft + 1, hidden).
        """
        emb, head = self._matrices()
        hidden = emb.shape[1]
        if head.dtype not in (torch.float16, torch.bfloat16, torch.float32):
            raise TypeError(f"LM head dtype {head.dtype} cannot take concept rows (is lm_head quantized?)")
        names: dict[int, str] = {}
        for name, concept in people.items():
            if self.n_soft is None:
                self.n_soft = concept.n_tokens - 1
            expected = (1 + self.n_soft, hidden)
            if tuple(concept.tokens.shape) != expected or concept.lm_weight.shape[0] != hidden:
                raise ValueError(
                    f"concept of {name!r} has tokens {tuple(concept.tokens.shape)} and lm_weight "
                    f"{tuple(concept.lm_weight.shape)}; this LVLM expects {expected} and ({hidden},)"
                )
            ids = self.ids(name)
            emb, head = self._matrices()  # may have been resized by ids()
            soft = torch.tensor(ids.soft, device=emb.device)
            with torch.inference_mode(False), torch.no_grad():
                emb[ids.concept] = concept.tokens[0].to(emb.device, emb.dtype)
                emb[soft] = concept.tokens[1:].to(emb.device, emb.dtype)
                head[ids.concept] = concept.lm_weight.to(head.device, head.dtype)
                head[soft.to(head.device)] = 0
            names[ids.concept] = name
        return names

    def logit_bias(self, allowed: Sequence[Iterable[int]], device: torch.device) -> torch.Tensor:
        """(B, V) float32: 0 for ordinary vocabulary and each row's allowed concept ids, -inf for every
        other id >= base_vocab (soft tokens, other people's concept tokens, unused rows)."""
        bias = torch.zeros(len(allowed), self.vocab_rows, dtype=torch.float32)
        bias[:, self.base_vocab :] = float("-inf")
        for row, ids in enumerate(allowed):
            ids = list(ids)
            if ids:
                bias[row, ids] = 0.0
        return bias.to(device)
