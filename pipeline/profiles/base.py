"""The profile boundary: what the worker asks of a model profile, whatever runs underneath.

Face detection and matching are shared by every profile (names are grounded on faces); a profile
adds recognition evidence (optional) and writes the caption and answers.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from pipeline.errors import PipelineError


@dataclass
class EnrolledPerson:
    """A person as the worker sees them: face references and, for PLVM, the concept tensors."""

    id: int
    name: str
    ref_embeddings: np.ndarray  # (R, 128) float32 SFace features
    concept: Any = None  # pipeline.plvm.engine.ConceptEmbedding for the plvm/tiny profiles


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
