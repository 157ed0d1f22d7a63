"""The ``plvm`` and ``tiny`` profiles: DINOv2 + Aligner concepts read and written by LLaVA.

``tiny`` runs the same code on the random tiny bundle written by ``pipeline models tiny`` (tests
only; its model version starts with ``tiny-random:`` so its rows are recognisable).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

import numpy as np
from PIL import Image

from pipeline.config import Settings
from pipeline.profiles.base import Description, EnrolledPerson, Profile, Scene
from pipeline.profiles.evaluation import Answerer, RecognitionScorer

if TYPE_CHECKING:
    from pipeline.plvm.evaluation_model import PlvmEvaluationModel


class PlvmProfile(Profile):
    needs_pixels_to_describe = True
    gives_recognition_evidence = True
    encodes_people = True
    answers_questions = True
    trainable = True

    @classmethod
    def weight_files(cls, settings: Settings) -> list[tuple[str, str, bool]]:
        """The reference encoder, the LVLM and the Aligner checkpoint (needs PyTorch)."""
        from pipeline.plvm.engine import PlvmEngine

        return PlvmEngine.from_settings(settings).check_files()

    @classmethod
    def recognition_scorer(cls, settings: Settings, model: Any = None) -> RecognitionScorer:
        """P(yes) of "Is <person> in this photo?" per photo and person (one batched engine call)."""
        return _evaluation_model(settings, model)

    @classmethod
    def answerer(cls, settings: Settings, model: Any = None) -> Answerer:
        """Summed option log-likelihoods from the engine, the person as a concept token."""
        return _evaluation_model(settings, model)

    @classmethod
    def pull_weights(cls, settings: Settings) -> tuple[list[str], str]:
        """DINOv2 and LLaVA from the hub; the Aligner checkpoint is the authors' file, put in place by hand."""
        from pipeline.plvm.engine import pull_models

        note = (
            f"Aligner checkpoint: put the authors' released checkpoint.ckpt (linked from their PLVM GitHub "
            f"repository, hosted on Google Drive) at {settings.aligner_path}, or set PIPELINE_ALIGNER_CHECKPOINT; "
            "check it with `pipeline models verify-aligner FILE`"
        )
        return [str(path) for path in pull_models(settings)], note

    @classmethod
    def describe_checkpoint(cls, path: Path) -> dict[str, Any]:
        """An Aligner checkpoint, strictly loaded (:func:`pipeline.plvm.checkpoint.describe_checkpoint`)."""
        from pipeline.plvm.checkpoint import describe_checkpoint

        return dict(describe_checkpoint(path))

    @classmethod
    def write_test_bundle(cls, folder: Path, seed: int) -> tuple[Path, str]:
        """The tiny random bundle (tokenizer, DINOv2, LLaVA, Aligner) for the ``tiny`` profile."""
        from pipeline.plvm.tiny import write_tiny_bundle

        path = write_tiny_bundle(folder, seed=seed)
        return path, f"PIPELINE_PROFILE=tiny PIPELINE_TINY_BUNDLE={path}"

    @classmethod
    def training_precisions(cls) -> tuple[str, ...]:
        from pipeline.plvm.training.config import Precision

        return tuple(get_args(Precision))

    @classmethod
    def training_config(cls, **options: Any) -> Any:
        """A :class:`pipeline.plvm.train.TrainConfig` (Aligner training)."""
        from pipeline.plvm.train import TrainConfig

        return TrainConfig(**options)

    @classmethod
    def train(cls, config: Any, settings: Settings, evaluator: Callable[..., Any] | None) -> Any:
        """Train the Aligner (:func:`pipeline.plvm.train.train_aligner`); the encoder and LLaVA stay frozen."""
        from pipeline.plvm.train import train_aligner

        return train_aligner(config, settings, evaluator=evaluator)

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.name = settings.profile
        self._engine: Any = None
        self._lock = threading.Lock()

    @property
    def engine(self) -> Any:
        """The lazily created :class:`pipeline.plvm.engine.PlvmEngine` (weights load on first use)."""
        with self._lock:
            if self._engine is None:
                from pipeline.plvm.engine import PlvmEngine

                self._engine = PlvmEngine.from_settings(self.settings)
            return self._engine

    def warm_up(self) -> None:
        """Load LLaVA (what tagging uses; concepts come from the database)."""
        self.engine.load_lvlm()

    @property
    def model_version(self) -> str:
        return str(self.engine.model_version)

    @property
    def random_weights(self) -> bool:
        return bool(self.engine.random_weights)

    @staticmethod
    def _people(people: list[EnrolledPerson]) -> list[Any]:
        from pipeline.plvm.engine import Person

        missing = [p.name for p in people if p.concept is None]
        if missing:
            raise RuntimeError(f"no PLVM concept for {', '.join(missing)}; re-enroll them with this profile")
        return [Person(name=p.name, concept=p.concept) for p in people]

    def recognition_scores(self, images: list[Image.Image], people: list[EnrolledPerson]) -> np.ndarray | None:
        with_concept = [p for p in people if p.concept is not None]
        scores = np.full((len(images), len(people)), np.nan)
        if not with_concept or not images:
            return scores
        batch = np.asarray(self.engine.recognition_scores_batch(images, self._people(with_concept)))  # (N, P')
        columns = [i for i, p in enumerate(people) if p.concept is not None]
        scores[:, columns] = batch
        return scores

    def describe(self, scenes: list[Scene], questions: list[str]) -> list[Description]:
        if any(s.image is None for s in scenes):
            raise ValueError("the plvm profile needs the photo's pixels to describe it")
        results = self.engine.describe(
            [s.image for s in scenes], [self._people(s.present) for s in scenes], list(questions)
        )
        return [Description(caption=r.caption, answers=dict(r.answers)) for r in results]

    def answer(self, image: Image.Image, question: str, people: list[EnrolledPerson]) -> str:
        return str(self.engine.ask(image, question, self._people([p for p in people if p.concept is not None])))

    def encode_person(self, images: list[Image.Image]) -> Any:
        return self.engine.encode_references(images)

    def person_record(self, data: Any) -> tuple[int, int, bytes, bytes]:
        """A :class:`pipeline.plvm.engine.ConceptEmbedding` as float16 bytes with its shape."""
        tokens, lm_weight = data.to_bytes()
        return int(data.tokens.shape[0]), int(data.tokens.shape[1]), tokens, lm_weight

    def decode_person(self, n_tokens: int, dim: int, tokens: bytes, lm_weight: bytes) -> Any:
        from pipeline.plvm.engine import ConceptEmbedding

        return ConceptEmbedding.from_bytes(tokens, lm_weight, n_tokens, dim)


def _evaluation_model(settings: Settings, model: Any) -> PlvmEvaluationModel:
    """A :class:`~pipeline.plvm.evaluation_model.PlvmEvaluationModel` around ``model`` (an engine),
    ``model`` itself when it is one already, or one around a new engine from ``settings``."""
    from pipeline.plvm.evaluation_model import PlvmEvaluationModel

    if isinstance(model, PlvmEvaluationModel):
        return model
    if model is None:
        from pipeline.plvm.engine import PlvmEngine

        model = PlvmEngine.from_settings(settings)
    return PlvmEvaluationModel(model)
