"""The profile boundary: what the worker asks of a model profile, whatever runs underneath.

Face detection and matching are shared by every profile (names are grounded on faces); a profile
adds recognition evidence (optional) and writes the caption and answers.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from pipeline.config import Settings
from pipeline.errors import PipelineError

if TYPE_CHECKING:
    from pipeline.profiles.evaluation import Answerer, RecognitionScorer


@dataclass
class EnrolledPerson:
    """A person as the worker sees them: face references and, for PLVM, the concept tensors."""

    id: int
    name: str
    ref_embeddings: np.ndarray  # (R, 128) float32 SFace features
    concept: Any = None  # the profile's own per-person data (Profile.decode_person), None when it has none


@dataclass
class PeopleIndex:
    """Everyone enrolled at ``version`` (the enrolment state results are computed against)."""

    version: int
    people: list[EnrolledPerson]

    @property
    def ref_matrix(self) -> tuple[np.ndarray, list[int]]:
        """All references stacked: (R, 128) and the person id of each row."""
        rows = [p.ref_embeddings for p in self.people if len(p.ref_embeddings)]
        ids = [p.id for p in self.people for _ in range(len(p.ref_embeddings))]
        return (np.concatenate(rows).astype(np.float32) if rows else np.zeros((0, 128), np.float32)), ids

    def by_id(self) -> dict[int, EnrolledPerson]:
        return {p.id: p for p in self.people}


@dataclass
class Scene:
    """What a profile needs to describe one photo."""

    image: Image.Image | None  # None when the profile says it doesn't need pixels
    present: list[EnrolledPerson]  # named people, left to right
    n_unknown: int  # faces that stayed unknown


@dataclass
class Description:
    caption: str
    answers: dict[str, str] = field(default_factory=dict)


class Profile(ABC):
    """One model profile. Implementations load lazily and are used by one worker process."""

    name: str
    needs_pixels_to_describe: bool = True

    # Capabilities: generic code asks these, never the profile's name.
    gives_recognition_evidence: bool = False
    """:meth:`recognition_scores` returns per-person evidence, so a re-match needs the pixels too."""
    encodes_people: bool = False
    """:meth:`encode_person` computes per-person data at enrolment; it is stored through
    :meth:`person_record` and read back by :meth:`decode_person`."""
    answers_questions: bool = False
    """:meth:`answer` answers free-form questions about a photo."""
    trainable: bool = False
    """Part of its models can be trained on the family's photos (``pipeline train``)."""

    @classmethod
    def weight_files(cls, settings: Settings) -> list[tuple[str, str, bool]]:
        """(what, where, present locally) for each set of weights the profile needs; loads no model
        and opens no network connection (``pipeline models check``). Default: nothing to fetch."""
        return []

    @classmethod
    def recognition_scorer(cls, settings: Settings, model: Any = None) -> RecognitionScorer:
        """What the recognition benchmark scores photos x people with (only when
        :attr:`gives_recognition_evidence`). ``model``: the profile's own model object to use (e.g. one
        being trained), or a scorer this method returned (returned as it is); None builds one from
        ``settings``. Loads no weights yet. Raises :class:`~pipeline.errors.PipelineError` otherwise."""
        raise PipelineError(f"the {settings.profile} profile gives no recognition evidence")

    @classmethod
    def answerer(cls, settings: Settings, model: Any = None) -> Answerer:
        """What the multiple-choice benchmark scores options with (only when :attr:`answers_questions`);
        ``model`` as for :meth:`recognition_scorer`. Raises :class:`~pipeline.errors.PipelineError` otherwise."""
        raise PipelineError(f"the {settings.profile} profile cannot answer questions")

    # Model weights and training (``pipeline models ...``, ``pipeline train``); no model is loaded.
    @classmethod
    def pull_weights(cls, settings: Settings) -> tuple[list[str], str]:
        """Download the weights it fetches from the hub now (workers never download): (where each is
        now, one line on what the user must put in place by hand, or ""). Default: nothing to fetch."""
        return [], ""

    @classmethod
    def describe_checkpoint(cls, path: Path) -> dict[str, Any]:
        """Strictly load a checkpoint of its trainable part; what fits it (config, parameter count).
        Raises :class:`~pipeline.errors.PipelineError` when it does not fit or the profile trains nothing."""
        raise PipelineError("this profile has no trainable part; choose a trainable profile")

    @classmethod
    def write_test_bundle(cls, folder: Path, seed: int) -> tuple[Path, str]:
        """Write random test weights to ``folder``: (the bundle's path, how to use it). Default: none."""
        raise PipelineError("this profile has no random test bundle")

    @classmethod
    def training_precisions(cls) -> tuple[str, ...]:
        """The values ``pipeline train --precision`` accepts (only when :attr:`trainable`)."""
        return ()

    @classmethod
    def training_config(cls, **options: Any) -> Any:
        """The training configuration from ``pipeline train``'s options; raises ValueError or
        TypeError for a bad value (only when :attr:`trainable`)."""
        raise PipelineError("this profile has no trainable part; choose a trainable profile")

    @classmethod
    def train(cls, config: Any, settings: Settings, evaluator: Callable[..., Any] | None) -> Any:
        """Train on ``config`` (from :meth:`training_config`); ``evaluator`` scores held-out data as
        ``pipeline eval recognition`` does. Returns the run's result (losses, evaluations, files).
        Side effects: loads the models, writes the checkpoint and the training state."""
        raise PipelineError("this profile has no trainable part; choose a trainable profile")

    @property
    def random_weights(self) -> bool:
        """True when the models are random (the ``tiny`` test profile): outputs are meaningless."""
        return False

    @property
    @abstractmethod
    def model_version(self) -> str:
        """A stable string naming the models and weights that produce this profile's results."""

    def recognition_scores(self, images: list[Image.Image], people: list[EnrolledPerson]) -> np.ndarray | None:
        """Per-photo, per-person evidence in [0, 1] (n_images, n_people), or None if the profile has none."""
        return None

    @abstractmethod
    def describe(self, scenes: list[Scene], questions: list[str]) -> list[Description]:
        """A caption and answers per scene (batched where the profile can)."""

    def answer(self, image: Image.Image, question: str, people: list[EnrolledPerson]) -> str:
        """Answer a free-form ``question`` about ``image``; ``people`` are the enrolled people it names.

        Raises :class:`~pipeline.errors.PipelineError` when the profile cannot answer questions.
        """
        raise PipelineError(f"the {self.name} profile cannot answer questions; use the plvm profile")

    def encode_person(self, images: list[Image.Image]) -> Any:
        """Profile-specific enrolment data for a person, or None (see :attr:`encodes_people`)."""
        return None

    def person_record(self, data: Any) -> tuple[int, int, bytes, bytes]:
        """``(n_tokens, dim, tokens, lm_weight)``: how ``data`` from :meth:`encode_person` is stored
        in ``person_concepts`` (only called when :attr:`encodes_people`)."""
        raise NotImplementedError(f"the {self.name} profile stores no per-person data")

    def decode_person(self, n_tokens: int, dim: int, tokens: bytes, lm_weight: bytes) -> Any:
        """The inverse of :meth:`person_record` (only called when :attr:`encodes_people`)."""
        raise NotImplementedError(f"the {self.name} profile stores no per-person data")

    def warm_up(self) -> None:  # noqa: B027 - a hook with a do-nothing default, not abstract
        """Load what tagging needs now instead of on the first photo (default: nothing)."""
