"""Run the multiple-choice question benchmark (the release's JSON, Yo'LLaVA style) with a profile that
answers questions.

Scoring rule (the answerer's ``scoring_rule``, in the report): for each item the person is encoded
from ``ref_img`` (once per reference file) by the profile's answerer
(:meth:`~pipeline.profiles.base.Profile.answerer`), the question is asked with ``<sks>`` standing
for that person (the release's convention: the person is called :data:`PERSON_NAME`), with
``query_img`` as the photo or no image for text-only items. Each option's text is scored as the
answer: the SUM of the log-probabilities of its tokens given the prompt (not divided by the number
of tokens; the options are not listed in the prompt). The option with the highest sum is the
model's pick; a tie goes to the option that comes first in the item. Summing favours shorter
options when options differ in length; per-item sums are returned so that another rule can be
applied afterwards.

No database is opened; a profile that cannot answer questions (faces) is refused.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.config import Settings
from pipeline.datasets.release import VqaItem, load_vqa_items, odd_items
from pipeline.evaluation.metrics import Failure, VqaResult, vqa_report
from pipeline.evaluation.recognition import EvaluationError, decode_image

if TYPE_CHECKING:
    from PIL import Image

    from pipeline.profiles.evaluation import Answerer

__all__ = ["PERSON_NAME", "choose_option", "evaluate_vqa"]

#: What the release's questions call the person: ``<sks>`` in a question is the item's reference person.
PERSON_NAME = "sks"


def choose_option(keys: list[str], logliks: list[float]) -> str:
    """The key whose log-likelihood is highest (first one on ties). ``keys`` and ``logliks`` align."""
    if len(keys) != len(logliks) or not keys:
        raise ValueError(f"{len(keys)} option keys for {len(logliks)} scores")
    best = max(range(len(keys)), key=lambda i: (logliks[i], -i))
    return keys[best]


def _answerer_for(settings: Settings, engine: Any) -> Answerer:
    from pipeline.profiles import profile_type, profiles_that

    kind = profile_type(settings.profile)
    if not kind.answers_questions:
        raise EvaluationError(
            f"the {settings.profile} profile cannot answer questions (it only names faces); run the question "
            f"benchmark with {profiles_that('answers_questions')}"
        )
    return kind.answerer(settings, engine)


def evaluate_vqa(
    settings: Settings,
    json_path: Path,
    root: Path | None = None,
    *,
    engine: Any = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Multiple-choice accuracy of the configured profile's model on the release's question file.

    Args:
        settings: a profile that answers questions (others are refused); ``max_image_pixels`` guards decoding.
        json_path: JSON list of ``{ref_img, query_img?, question, multiple_choice, correct_answer}``.
        root: folder the image paths are relative to (default: the JSON file's folder).
        engine: the profile's model object (or an answerer from its ``answerer``) to use instead of
            building one from ``settings``.
        progress: show a progress bar on stderr.

    Returns:
        :func:`~pipeline.evaluation.metrics.vqa_report`'s dict (``accuracy``, ``visual_accuracy``,
        ``text_accuracy``, counts, ``failures``) plus ``scoring_rule``, ``profile``,
        ``model_version``, ``random_weights``, ``odd_items`` (one line per item whose question has
        no ``<sks>``; scored like the others, the person still from its ``ref_img``) and ``items``:
        per item ``index``, ``text_only``, ``correct``, ``predicted`` (None when an image could not be
        decoded) and ``loglik`` (option key -> summed log-probability; null where it is -inf).

    Raises:
        EvaluationError: a profile that cannot answer questions, or no items in the file.
        FileNotFoundError / pipeline.datasets.release.VqaFormatError: missing or malformed JSON.
        pipeline.errors.PipelineError: model weights missing.

    Side effects: loads the models, reads the images; writes nothing.
    """
    from tqdm import tqdm

    answerer = _answerer_for(settings, engine)
    items = load_vqa_items(Path(json_path), root)
    if not items:
        raise EvaluationError(f"{json_path}: no question items")
    people: dict[Path, _Encoded] = {}  # reference -> the profile's per-person data, or why there is none
    queries = _QueryCache()
    results: list[VqaResult] = []
    failures: list[Failure] = []
    rows: list[dict[str, Any]] = []
    for item in tqdm(
        items, desc=f"{settings.profile}: questions", unit="q", file=sys.stderr, disable=not progress, leave=False
    ):
        predicted, logliks = _answer(item, settings, answerer, people, queries, failures)
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
        scoring_rule=answerer.scoring_rule,
        profile=settings.profile,
        model_version=answerer.version_or(f"{settings.profile}:unsaved-aligner"),
        random_weights=answerer.random_weights,
        odd_items=odd_items(items),
        items=rows,
    )
    return report


@dataclass
class _Encoded:
    """A reference person: the profile's data (from ``answerer.encode``), or why the photo failed."""

    data: Any
    failed: str | None = None


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
    answerer: Answerer,
    people: dict[Path, _Encoded],
    queries: _QueryCache,
    failures: list[Failure],
) -> tuple[str | None, dict[str, float | None] | None]:
    """(picked key, {key: loglik}) for one item; (None, None) when an image failed (listed once)."""
    if item.reference not in people:
        image, reason = decode_image(item.reference, settings)
        if image is None:
            failures.append(
                Failure(str(item.reference), f"reference cannot be decoded ({reason}); its questions are unanswered")
            )
            people[item.reference] = _Encoded(None, str(reason))
        else:
            people[item.reference] = _Encoded(answerer.encode([image]))
    person = people[item.reference]
    if person.failed is not None:
        return None, None
    image = None
    if item.query is not None:
        image = queries.get(item.query, settings, failures)
        if image is None:
            return None, None
    keys = list(item.choices)
    values = answerer.option_logliks(image, item.question, [item.choices[k] for k in keys], PERSON_NAME, person.data)
    exported = {key: (value if math.isfinite(value) else None) for key, value in zip(keys, values, strict=True)}
    return choose_option(keys, values), exported  # JSON has no -inf: an impossible option exports as null
