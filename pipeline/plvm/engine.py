"""PlvmEngine: the one object a worker uses. Loads lazily, once, under locks:

- reference side (DINOv2 + Aligner) on the first :meth:`PlvmEngine.encode_references` -- enrolment
  never loads LLaVA;
- LLaVA on the first recognition/description/question call -- these never run the Aligner (they use
  stored :class:`ConceptEmbedding`s).

LLaVA calls are serialised by a lock because concept rows are shared model state.
Weights are always read locally (``local_files_only``); :func:`pull_models` is the download step.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image

from pipeline.devices import resolve_device, resolve_dtype
from pipeline.plvm.checkpoint import file_sha256, load_aligner, missing_aligner_error, read_sidecar
from pipeline.plvm.embeddings import ConceptEmbedding, Description, Person
from pipeline.plvm.errors import MissingWeightsError, PlvmError
from pipeline.plvm.hub import find_local, pull_models, resolve_model_dir
from pipeline.plvm.prompts import CAPTION_QUESTION, RECOGNITION_QUESTION

if TYPE_CHECKING:
    from pipeline.plvm.aligner import Aligner
    from pipeline.plvm.geometry import Geometry
    from pipeline.plvm.lvlm import Lvlm
    from pipeline.plvm.reference import Backend, ReferenceEncoder

__all__ = [
    "ConceptEmbedding",
    "Description",
    "MissingWeightsError",
    "Person",
    "PlvmEngine",
    "PlvmSources",
    "pull_models",
]

BUNDLE_MANIFEST = "bundle.json"


@dataclass(frozen=True)
class PlvmSources:
    """Where each part comes from. dinov2/llava: hub id or local folder; aligner: checkpoint file."""

    dinov2: str
    llava: str
    aligner: Path
    reference_backend: Backend = "transformers"
    geometry: Geometry = "release"  # DINOv2 position-embedding resampling (pipeline.plvm.geometry)
    random_weights: bool = False
    label: str = "plvm"  # model_version prefix ("plvm" or "tiny-random")


class PlvmEngine:
    """Lazy, lock-guarded PLVM: reference encoding, recognition scores, captions, answers."""

    def __init__(
        self,
        sources: PlvmSources,
        device: str = "auto",
        dtype: str = "auto",
        load_in_8bit: bool = False,
        max_new_tokens: int = 40,
        max_batch: int = 16,
        reuse_prefix: bool = True,
        temperature: float = 0.0,
    ) -> None:
        """max_new_tokens, temperature: generation (temperature 0 = greedy).

        reuse_prefix: in :meth:`describe`, prefill each photo's shared prompt prefix
        ([BOS][system][concepts][USER: image]) once and generate the caption and every answer from
        that KV cache (same greedy output; see :mod:`pipeline.plvm.lvlm`). May be changed at any time."""
        self.sources = sources
        self.random_weights = sources.random_weights
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.load_in_8bit = load_in_8bit
        self.max_new_tokens = max_new_tokens
        self.max_batch = max_batch
        self.reuse_prefix = reuse_prefix
        self.temperature = temperature
        self._reference_lock = threading.Lock()
        self._lvlm_lock = threading.Lock()
        self._encoder: ReferenceEncoder | None = None
        self._aligner: Aligner | None = None
        self._lvlm: Lvlm | None = None

    @classmethod
    def from_settings(cls, settings: Any) -> PlvmEngine:
        """Profile "plvm": settings' ids/paths; "tiny": the bundle at ``settings.tiny_bundle``."""
        if settings.profile == "plvm":
            sources = PlvmSources(
                settings.dinov2_model,
                settings.llava_model,
                Path(settings.aligner_path),
                settings.reference_backend,
                settings.dinov2_geometry,
            )
        elif settings.profile == "tiny":
            sources = tiny_sources(settings.tiny_bundle, settings.reference_backend, settings.dinov2_geometry)
        else:
            raise PlvmError(f"profile '{settings.profile}' does not use PLVM (expected 'plvm' or 'tiny')")
        return cls(
            sources,
            settings.device,
            settings.dtype,
            settings.load_in_8bit,
            settings.max_new_tokens,
            max_batch=settings.plvm_max_batch,
            reuse_prefix=settings.reuse_prefix,
            temperature=settings.temperature,
        )

    # Identity ---------------------------------------------------------------------------------
    @cached_property
    def model_version(self) -> str:
        """e.g. "plvm:dinov2-base+llava-1.5-7b-hf+aligner-1a2b3c4d+pos-release": first 8 hex of the
        checkpoint's sha256, then the DINOv2 geometry the concepts were encoded with."""
        if not self.sources.aligner.is_file():
            raise missing_aligner_error(self.sources.aligner)
        short = lambda ref: Path(ref.rstrip("/")).name  # noqa: E731  (a one-line helper used twice below)
        digest = file_sha256(self.sources.aligner)[:8]
        parts = f"{short(self.sources.dinov2)}+{short(self.sources.llava)}+aligner-{digest}+pos-{self.sources.geometry}"
        return f"{self.sources.label}:{parts}"

    def check_files(self) -> list[tuple[str, str, bool]]:
        """(what, path or hub id, present locally) for each part; loads nothing, no network."""
        s = self.sources
        return [
            ("reference encoder", s.dinov2, find_local(s.dinov2) is not None),
            ("LVLM", s.llava, find_local(s.llava) is not None),
            ("aligner", str(s.aligner), s.aligner.is_file()),
        ]

    @property
    def reference_loaded(self) -> bool:
        return self._encoder is not None and self._aligner is not None

    @property
    def lvlm_loaded(self) -> bool:
        return self._lvlm is not None

    # Loading ----------------------------------------------------------------------------------
    def _reference(self) -> tuple[ReferenceEncoder, Aligner]:
        with self._reference_lock:
            if self._aligner is None:
                encoder = self._reference_encoder()  # first: a missing DINOv2 is reported before the Aligner
                aligner = load_aligner(
                    self.sources.aligner, config=read_sidecar(self.sources.aligner), map_location=self.device
                )
                _check_widths(encoder, aligner)
                self._aligner = aligner
            return self._reference_encoder(), self._aligner

    def _reference_encoder(self) -> ReferenceEncoder:
        if self._encoder is None:  # caller holds _reference_lock
            from pipeline.plvm.reference import load_reference_encoder

            folder = resolve_model_dir(self.sources.dinov2, "DINOv2 reference encoder", "PIPELINE_DINOV2_MODEL")
            self._encoder = load_reference_encoder(
                folder, self.sources.reference_backend, self.device, self.dtype, self.sources.geometry
            )
        return self._encoder

    def load_reference_encoder(self) -> ReferenceEncoder:
        """The frozen reference encoder (loads it on first use; never reads the Aligner checkpoint).
        For training code."""
        with self._reference_lock:
            return self._reference_encoder()

    def use_aligner(self, aligner: Aligner) -> None:
        """Make :meth:`encode_references` use ``aligner`` (e.g. one being trained) instead of the
        checkpoint file. The engine keeps the object, so later updates of its weights are seen.

        Side effect: loads the reference encoder. Raises PlvmError if the widths do not fit.
        """
        with self._reference_lock:
            _check_widths(self._reference_encoder(), aligner)
            self._aligner = aligner

    def load_lvlm(self) -> Lvlm:
        """The loaded :class:`~pipeline.plvm.lvlm.Lvlm` (loads it on first use). For evaluation/training code;
        callers that run it concurrently with the engine must hold their own lock."""
        with self._lvlm_lock:
            return self._lvlm_model()

    def _lvlm_model(self) -> Lvlm:
        if self._lvlm is None:  # caller holds _lvlm_lock
            from pipeline.plvm.lvlm import Lvlm

            folder = resolve_model_dir(self.sources.llava, "LLaVA model", "PIPELINE_LLAVA_MODEL")
            self._lvlm = Lvlm.load(folder, self.device, self.dtype, self.load_in_8bit, max_batch=self.max_batch)
        return self._lvlm

    # Enrolment --------------------------------------------------------------------------------
    @torch.no_grad()
    def encode_references(self, images: list[Image.Image]) -> ConceptEmbedding:
        """DINOv2 + Aligner on each reference image, mean over images; float32 on CPU. Never loads LLaVA."""
        if not images:
            raise ValueError("encode_references needs at least one image")
        encoder, aligner = self._reference()
        z_ref = encoder.encode(images).to(self.device)  # (n, T, width)
        tokens, lm_weight = aligner(z_ref)  # (n, Q, D), (n, D)
        return ConceptEmbedding(tokens=tokens.float().mean(0).cpu(), lm_weight=lm_weight.float().mean(0).cpu())

    # LLaVA calls ------------------------------------------------------------------------------
    def recognition_scores(self, image: Image.Image, people: list[Person]) -> list[float]:
        """P(Yes)/(P(Yes)+P(No)) for "Is <person> in this photo?"; all people in one batched forward pass
        (up to ``max_batch`` people; more are split into several passes)."""
        return self.recognition_scores_batch([image], people)[0].tolist()

    def recognition_scores_batch(self, images: Sequence[Image.Image], people: list[Person]) -> np.ndarray:
        """Scores for every (image, person) pair, shape (n_images, n_people), float64 in [0, 1]."""
        from pipeline.plvm.lvlm import LvlmRequest

        if not people or not images:
            return np.zeros((len(images), len(people)))
        requests = [LvlmRequest(image, RECOGNITION_QUESTION, [person]) for image in images for person in people]
        with self._lvlm_lock:
            scores = self._lvlm_model().yes_probability(requests)
        return np.asarray(scores, dtype=np.float64).reshape(len(images), len(people))  # (n_images, n_people)

    def describe(
        self,
        images: Sequence[Image.Image],
        present: list[list[Person]],
        questions: list[str],
        caption_question: str = CAPTION_QUESTION,
    ) -> list[Description]:
        """Per photo: a caption and an answer to each question, with that photo's present people's concepts.

        All (photo, prompt) rows are generated together in left-padded batches.
        """
        from pipeline.plvm.lvlm import LvlmRequest

        if len(images) != len(present):
            raise ValueError(f"describe got {len(images)} images but {len(present)} present-people lists")
        prompts = [caption_question, *questions]
        requests = [
            LvlmRequest(image, q, people) for image, people in zip(images, present, strict=True) for q in prompts
        ]
        with self._lvlm_lock:
            texts = self._lvlm_model().generate(
                requests, self.max_new_tokens, reuse_prefix=self.reuse_prefix, temperature=self.temperature
            )
        out = []
        for i in range(len(images)):
            row = texts[i * len(prompts) : (i + 1) * len(prompts)]
            out.append(Description(caption=row[0], answers=dict(zip(questions, row[1:], strict=True))))
        return out

    def ask(self, image: Image.Image | None, question: str, people: list[Person]) -> str:
        """One generated answer; names in the question (or <sks>) refer to ``people``."""
        from pipeline.plvm.lvlm import LvlmRequest

        with self._lvlm_lock:
            request = LvlmRequest(image, question, people)
            return self._lvlm_model().generate([request], self.max_new_tokens, temperature=self.temperature)[0]

    def option_loglik(
        self, image: Image.Image | None, question: str, options: list[str], people: list[Person]
    ) -> list[float]:
        """Sum log-likelihood of each option's tokens as the answer (multiple-choice evaluation)."""
        from pipeline.plvm.lvlm import LvlmRequest

        with self._lvlm_lock:
            return self._lvlm_model().option_loglik(LvlmRequest(image, question, people), options)


def _check_widths(encoder: ReferenceEncoder, aligner: Aligner) -> None:
    if encoder.width != aligner.config.width:
        raise PlvmError(f"reference encoder width {encoder.width} != Aligner input width {aligner.config.width}")


def tiny_sources(
    bundle: Path | None, reference_backend: Backend = "transformers", geometry: Geometry = "release"
) -> PlvmSources:
    """Sources of a folder written by :func:`pipeline.plvm.tiny.write_tiny_bundle`."""
    if bundle is None:
        raise MissingWeightsError(
            "profile 'tiny' needs PIPELINE_TINY_BUNDLE: a folder written by `pipeline models tiny`"
        )
    manifest_path = Path(bundle) / BUNDLE_MANIFEST
    if not manifest_path.is_file():
        raise MissingWeightsError(f"{manifest_path} not found: write the bundle with `pipeline models tiny`")
    manifest = json.loads(manifest_path.read_text())
    root = Path(bundle).resolve()
    return PlvmSources(
        dinov2=str(root / manifest["dinov2"]),
        llava=str(root / manifest["llava"]),
        aligner=root / manifest["aligner"],
        reference_backend=reference_backend,
        geometry=geometry,
        random_weights=bool(manifest.get("random", True)),
        label="tiny-random",
    )
