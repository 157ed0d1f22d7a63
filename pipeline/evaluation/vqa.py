"""Run the multiple-choice question benchmark (the PLVM release's JSON) with the plvm/tiny profile.

Scoring rule (:data:`SCORING_RULE`): for each item the person's concept is encoded from
``ref_img`` (once per reference file), the question is asked with ``<sks>`` standing for that
concept (the person is called ``sks`` inside the engine, so ``<sks>`` becomes the concept token),
with ``query_img`` as the photo or no image for text-only items. Each option's text is scored
as the answer: the SUM of the log-probabilities of its tokens given the prompt (not divided by
the number of tokens; the options are not listed in the prompt). The option with the highest
sum is the model's pick; a tie goes to the option that comes first in the item. Summing favours
shorter options when options differ in length; per-item sums are returned so that another rule
can be applied afterwards.

No database is opened; the faces profile cannot answer questions and is refused.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.config import Settings
from pipeline.datasets.release import VqaItem, load_vqa_items, odd_items
from pipeline.evaluation.metrics import Failure, VqaResult, vqa_report
from pipeline.evaluation.recognition import EvaluationError, decode_image, model_version_of

if TYPE_CHECKING:
    from PIL import Image

    from pipeline.plvm.embeddings import ConceptEmbedding

__all__ = ["CONCEPT_NAME", "SCORING_RULE", "choose_option", "evaluate_vqa"]

#: The person's name inside the engine: ``<sks>`` in a question becomes this concept's token.
CONCEPT_NAME = "sks"
SCORING_RULE = (
    "highest sum of the option's token log-probabilities given the prompt (question with <sks> as the "
    "concept token, query image or none); not length-normalised; ties go to the first option"
)


def choose_option(keys: list[str], logliks: list[float]) -> str:
    """The key whose log-likelihood is highest (first one on ties). ``keys`` and ``logliks`` align."""
    if len(keys) != len(logliks) or not keys:
        raise ValueError(f"{len(keys)} option keys for {len(logliks)} scores")
    best = max(range(len(keys)), key=lambda i: (logliks[i], -i))
    return keys[best]


def _engine_for(settings: Settings, engine: Any) -> Any:
    if engine is not None:
        return engine
    from pipeline.profiles import profile_type

    if not profile_type(settings.profile).answers_questions:
        raise EvaluationError(
            "the faces profile cannot answer questions (it only names faces); run the question benchmark "
            "with the plvm profile (--profile plvm / PIPELINE_PROFILE=plvm) or the tiny test profile"
        )
    from pipeline.plvm.engine import PlvmEngine

    return PlvmEngine.from_settings(settings)


def evaluate_vqa(
    settings: Settings,
    json_path: Path,
    root: Path | None = None,
    *,
    engine: Any = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Multiple-choice accuracy of the plvm/tiny model on the release's question file.

    Args:
        settings: profile plvm or tiny (faces is refused); ``max_image_pixels`` guards decoding.
        json_path: JSON list of ``{ref_img, query_img?, question, multiple_choice, correct_answer}``.
        root: folder the image paths are relative to (default: the JSON file's folder).
        engine: a :class:`~pipeline.plvm.engine.PlvmEngine` to use instead of building one.
        progress: show a progress bar on stderr.

    Returns:
        :func:`~pipeline.evaluation.metrics.vqa_report`'s dict (``accuracy``, ``visual_accuracy``,
        ``text_accuracy``, counts, ``failures``) plus ``scoring_rule``, ``profile``,
        ``model_version``, ``random_weights``, ``odd_items`` (one line per item whose question has
        no ``<sks>``; scored like the others, the concept still from its ``ref_img``) and ``items``:
        per item ``index``, ``text_only``, ``correct``, ``predicted`` (None when an image could not be
        decoded) and ``loglik`` (option key -> summed log-probability; null where it is -inf).

    Raises:
        EvaluationError: faces profile, or no items in the file.
        FileNotFoundError / pipeline.datasets.release.VqaFormatError: missing or malformed JSON.
        pipeline.plvm.errors.PlvmError: model weights missing.

    Side effects: loads the models, reads the images; writes nothing.
    """
    from tqdm import tqdm

    engine = _engine_for(settings, engine)
    items = load_vqa_items(Path(json_path), root)
    if not items:
        raise EvaluationError(f"{json_path}: no question items")
    concepts: dict[Path, ConceptEmbedding | str] = {}  # reference -> concept, or the reason it failed
    queries = _QueryCache()
    results: list[VqaResult] = []
    failures: list[Failure] = []
    rows: list[dict[str, Any]] = []
    for item in tqdm(
        items, desc=f"{settings.profile}: questions", unit="q", file=sys.stderr, disable=not progress, leave=False
    ):
        predicted, logliks = _answer(item, settings, engine, concepts, queries, failures)
        results.append(VqaResult(item.index, item.text_only, item.answer, predicted))
        rows.append(
            {
                "index": item.index,
                "text_only": item.text_only,
                "correct": item.answer,
                "predicted": predicted,
                "loglik": logliks,
            }
        )
    report = vqa_report(results, failures)
    report.update(
        scoring_rule=SCORING_RULE,
        profile=settings.profile,
        model_version=model_version_of(engine, f"{settings.profile}:unsaved-aligner"),
        random_weights=bool(getattr(engine, "random_weights", False)),
        odd_items=odd_items(items),
        items=rows,
    )
    return report


class _QueryCache:
    """Decoded query photos: the last one kept (items often share it), failures remembered."""

    def __init__(self) -> None:
        self.failed: dict[Path, str] = {}
        self.last: tuple[Path, Image.Image] | None = None

    def get(self, path: Path, settings: Settings, failures: list[Failure]) -> Image.Image | None:
        """The decoded photo, or None when it cannot be decoded (listed in ``failures`` once)."""
        if path in self.failed:
            return None
        if self.last is not None and self.last[0] == path:
            return self.last[1]
        image, reason = decode_image(path, settings)
        if image is None:
            self.failed[path] = str(reason)
            failures.append(Failure(str(path), f"query cannot be decoded ({reason}); its questions are unanswered"))
            return None
        self.last = (path, image)
        return image


def _answer(
    item: VqaItem,
    settings: Settings,
    engine: Any,
    concepts: dict[Path, Any],
    queries: _QueryCache,
    failures: list[Failure],
) -> tuple[str | None, dict[str, float | None] | None]:
    """(picked key, {key: loglik}) for one item; (None, None) when an image failed (listed once)."""
    from pipeline.plvm.embeddings import Person

    if item.reference not in concepts:
        image, reason = decode_image(item.reference, settings)
        if image is None:
            failures.append(
                Failure(str(item.reference), f"reference cannot be decoded ({reason}); its questions are unanswered")
            )
            concepts[item.reference] = reason
        else:
            concepts[item.reference] = engine.encode_references([image])
    concept = concepts[item.reference]
    if isinstance(concept, str):
        return None, None
    image = None
    if item.query is not None:
        image = queries.get(item.query, settings, failures)
        if image is None:
            return None, None
    keys = list(item.choices)
    scores = engine.option_loglik(
        image, item.question, [item.choices[k] for k in keys], [Person(CONCEPT_NAME, concept)]
    )
    values = [float(score) for score in scores]
    exported = {key: (value if math.isfinite(value) else None) for key, value in zip(keys, values, strict=True)}
    return choose_option(keys, values), exported  # JSON has no -inf: an impossible option exports as null
