"""The PLVM engine as the benchmarks see it (``pipeline eval recognition`` / ``eval vqa``, held-out
evaluation during training): one object that is both the profile's recognition scorer and its
answerer (the protocols of :mod:`pipeline.profiles.evaluation`).

It wraps a :class:`~pipeline.plvm.engine.PlvmEngine` (one built from the settings, or one whose
Aligner is being trained) and calls its methods at call time, so a wrapped engine can be inspected.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.plvm.errors import PlvmError

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["IDENTITY_NAME", "SCORE_NOTE", "SCORING_RULE", "PlvmEvaluationModel"]

#: Names the concepts of the recognition benchmark get inside the engine (display names never
#: reach the prompt; neutral names cannot collide with words of the question and stay the same
#: across runs).
IDENTITY_NAME = "eval_identity_{index}"
SCORE_NOTE = (
    "score = P(yes) / (P(yes) + P(no)) for 'Is <identity> in this photo?', the identity's concept encoded "
    "from its reference images (every ref_img*; the Aligner's outputs averaged)"
)
SCORING_RULE = (
    "highest sum of the option's token log-probabilities given the prompt (question with <sks> as the "
    "concept token, query image or none); not length-normalised; ties go to the first option"
)


class PlvmEvaluationModel:
    """Recognition scores and multiple-choice log-likelihoods from one PLVM engine."""

    def __init__(self, engine: Any) -> None:
        """``engine``: a :class:`~pipeline.plvm.engine.PlvmEngine`, or an object with its methods."""
        self.engine = engine

    @property
    def model_version(self) -> str:
        return str(self.engine.model_version)

    def version_or(self, fallback: str) -> str:
        try:
            return str(self.engine.model_version)
        except (AttributeError, PlvmError, OSError):  # an Aligner being trained has no file to hash
            return fallback

    @property
    def random_weights(self) -> bool:
        return bool(getattr(self.engine, "random_weights", False))

    @property
    def rows_per_call(self) -> int:
        return int(getattr(self.engine, "max_batch", 16))

    @property
    def score_note(self) -> str:
        return SCORE_NOTE

    @property
    def scoring_rule(self) -> str:
        return SCORING_RULE

    def encode(self, images: list[Image.Image]) -> Any:
        """The person's :class:`~pipeline.plvm.embeddings.ConceptEmbedding` (Aligner outputs averaged)."""
        return self.engine.encode_references(images)

    def scores(self, images: Sequence[Image.Image], people: list[Any]) -> np.ndarray:
        """P(yes) per (image, person), (len(images), len(people)), one batched engine call."""
        from pipeline.plvm.embeddings import Person

        named = [Person(IDENTITY_NAME.format(index=i), concept) for i, concept in enumerate(people)]
        return np.asarray(self.engine.recognition_scores_batch(list(images), named))

    def option_logliks(
        self, image: Image.Image | None, question: str, options: list[str], name: str, person: Any
    ) -> list[float]:
        """``<name>`` in the question becomes the person's concept token."""
        from pipeline.plvm.embeddings import Person

        return [float(v) for v in self.engine.option_loglik(image, question, options, [Person(name, person)])]
