"""What the benchmarks (``pipeline eval``, held-out evaluation during training) ask of a profile.

A profile that gives recognition evidence returns a :class:`RecognitionScorer` from
:meth:`~pipeline.profiles.base.Profile.recognition_scorer`; one that answers questions returns an
:class:`Answerer` from :meth:`~pipeline.profiles.base.Profile.answerer`. The evaluation layer drives
them without knowing which model runs underneath; no database is involved.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

__all__ = ["Answerer", "EvaluationModel", "RecognitionScorer"]


class EvaluationModel(Protocol):
    """What both benchmarks need: who the model is, and a person encoded from reference photos."""

    @property
    def model_version(self) -> str:
        """The profile's model version. Raises :class:`~pipeline.errors.PipelineError` when a weight
        file it names is missing (the message says what to do)."""
        ...

    @property
    def random_weights(self) -> bool:
        """True when the models are random (test bundle): the figures are meaningless."""
        ...

    def version_or(self, fallback: str) -> str:
        """:attr:`model_version`, or ``fallback`` when it cannot tell (e.g. a model being trained has
        no saved weights file to name yet)."""
        ...

    def encode(self, images: list[Image.Image]) -> Any:
        """The profile's per-person data from one or more reference photos of one person (RGB).
        Side effect: loads the models that encode people on first use."""
        ...


class RecognitionScorer(EvaluationModel, Protocol):
    """Scores photos x people: the profile's recognition evidence, in [0, 1]."""

    @property
    def rows_per_call(self) -> int:
        """How many (photo, person) pairs one :meth:`scores` call handles at once (a batching hint)."""
        ...

    @property
    def score_note(self) -> str:
        """One readable line on what a score is (printed as a note after ``{profile} profile: ``)."""
        ...

    def scores(self, images: Sequence[Image.Image], people: list[Any]) -> np.ndarray:
        """Evidence that each person (from :meth:`encode`) is in each photo: float, shape
        (len(images), len(people)), in [0, 1]. Side effect: loads the scoring model on first use."""
        ...


class Answerer(EvaluationModel, Protocol):
    """Scores the options of a multiple-choice question (the release's question format)."""

    @property
    def scoring_rule(self) -> str:
        """One readable line: how the options are scored and which one is picked."""
        ...

    def option_logliks(
        self, image: Image.Image | None, question: str, options: list[str], name: str, person: Any
    ) -> list[float]:
        """Summed log-probability of each option's tokens as the answer to ``question`` about
        ``image`` (None: text only), where ``<name>`` in the question is ``person`` (from
        :meth:`encode`); one float per option, -inf for an impossible one."""
        ...
