"""Value types passed between the worker and the PLVM engine: a person's concept embedding
(what enrolment stores), a named person, and a photo's description."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

_F16_LE = np.dtype("<f2")


@dataclass
class ConceptEmbedding:
    """The Aligner's output for one person, averaged over their reference images.

    tokens: (n_tokens, dim) float -- row 0 the concept token's input embedding, rows 1: the soft
        tokens (17 x 4096 for the released Aligner).
    lm_weight: (dim,) float -- the concept token's LM-head row.
    """

    tokens: torch.Tensor
    lm_weight: torch.Tensor

    def __post_init__(self) -> None:
        if self.tokens.ndim != 2 or self.lm_weight.ndim != 1 or self.tokens.shape[1] != self.lm_weight.shape[0]:
            raise ValueError(
                f"ConceptEmbedding expects tokens (n_tokens, dim) and lm_weight (dim,); got "
                f"{tuple(self.tokens.shape)} and {tuple(self.lm_weight.shape)}"
            )
        if self.tokens.shape[0] < 2:
            raise ValueError(f"ConceptEmbedding needs a concept token and soft tokens; got {self.tokens.shape[0]} rows")

    @property
    def n_tokens(self) -> int:
        return int(self.tokens.shape[0])

    @property
    def dim(self) -> int:
        return int(self.tokens.shape[1])

    def to_bytes(self) -> tuple[bytes, bytes]:
        """(tokens, lm_weight) as float16 little-endian, row-major; 2 * n_tokens * dim and 2 * dim bytes."""
        tokens = self.tokens.detach().to("cpu", torch.float32).numpy().astype(_F16_LE)
        lm_weight = self.lm_weight.detach().to("cpu", torch.float32).numpy().astype(_F16_LE)
        return tokens.tobytes(), lm_weight.tobytes()

    @classmethod
    def from_bytes(cls, tokens: bytes, lm_weight: bytes, n_tokens: int, dim: int) -> ConceptEmbedding:
        """Inverse of :meth:`to_bytes`; returns float32 tensors. Raises ValueError on a size mismatch."""
        if len(tokens) != 2 * n_tokens * dim or len(lm_weight) != 2 * dim:
            raise ValueError(
                f"concept bytes do not fit ({n_tokens}, {dim}) float16: got {len(tokens)} token bytes "
                f"(expected {2 * n_tokens * dim}) and {len(lm_weight)} lm_weight bytes (expected {2 * dim})"
            )
        t = np.frombuffer(tokens, dtype=_F16_LE).astype(np.float32).reshape(n_tokens, dim)  # (n_tokens, dim)
        w = np.frombuffer(lm_weight, dtype=_F16_LE).astype(np.float32)  # (dim,)
        return cls(tokens=torch.from_numpy(t), lm_weight=torch.from_numpy(w))


@dataclass
class Person:
    """An enrolled person as the model sees them: a display name and their concept embedding."""

    name: str
    concept: ConceptEmbedding


@dataclass
class Description:
    """One photo's generated caption and answers (question -> answer text, names decoded)."""

    caption: str
    answers: dict[str, str] = field(default_factory=dict)
