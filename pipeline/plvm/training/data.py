"""Training data: identity split, recognition pairs (50/50 positive/negative) and QA items.

The identity folders are read with the evaluation loader (:mod:`pipeline.datasets.release`), so
training and ``pipeline eval recognition`` agree on what a reference and a query are. The split
keeps two kinds of held-out data:

- "unseen": whole identities never trained on (not even as negatives);
- "seen": a fraction of each training identity's query photos, never trained on.

With ``max_pixels`` given, every image is decoded once before the split (as ``pipeline eval``
decodes them): an unreadable query is skipped, an identity is skipped when none of its references
decodes (its first readable ``ref_img*`` is its reference), and each skipped file is listed in
``Split.skipped`` with the reason; the run goes on.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from pipeline.plvm.prompts import PLACEHOLDER, RECOGNITION_QUESTION

log = logging.getLogger(__name__)

#: Recognition questions; the first is the one inference and evaluation ask.
RECOGNITION_QUESTIONS: tuple[str, ...] = (
    RECOGNITION_QUESTION,
    "Is <sks> in this image?",
    "Can you see <sks> in this photo?",
    "Does this photo show <sks>?",
)
#: Default probability of asking exactly ``RECOGNITION_QUESTION`` (else a paraphrase, uniformly);
#: :class:`ExampleSampler`'s ``paraphrase_fraction`` is one minus this.
MAIN_QUESTION_PROBABILITY = 0.5
YES_ANSWER = "Yes, <sks> is in this photo."
NO_ANSWER = "No, <sks> is not in this photo."


@dataclass(frozen=True)
class IdentityImages:
    """One identity: its reference image and a subset of its query images (sorted)."""

    name: str
    reference: Path
    queries: tuple[Path, ...]


@dataclass
class Split:
    """train: training identities with their TRAINING queries; seen: the same identities with their
    held-out queries (identities without any are left out); unseen: held-out identities, all queries."""

    train: list[IdentityImages]
    seen: list[IdentityImages]
    unseen: list[IdentityImages]
    problems: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "path: reason" per unreadable image
    unreadable: set[Path] = field(default_factory=set)  # resolved paths of those images

    @property
    def held_out_queries(self) -> set[Path]:
        """Every image that must not be trained on (resolved paths)."""
        paths = {q.resolve() for ident in self.seen for q in ident.queries}
        for ident in self.unseen:
            paths |= {ident.reference.resolve(), *(q.resolve() for q in ident.queries)}
        return paths

    def summary(self) -> dict[str, Any]:
        """Counts and names, JSON-able."""

        def count(identities: list[IdentityImages]) -> int:
            return sum(len(i.queries) for i in identities)

        return {
            "train_identities": len(self.train),
            "train_queries": count(self.train),
            "seen_heldout_queries": count(self.seen),
            "unseen_identities": [i.name for i in self.unseen],
            "unseen_queries": count(self.unseen),
            "skipped_images": list(self.skipped),
        }


def _readable(paths: Sequence[Path], max_pixels: int, skipped: list[str], unreadable: set[Path]) -> list[Path]:
    """The paths that decode; the others are added to ``skipped`` ("path: reason") and ``unreadable``."""
    from pipeline.photos.decode import PhotoError, decode_photo

    good = []
    for path in paths:
        try:
            decode_photo(path, max_pixels)
        except PhotoError as error:
            skipped.append(f"{path}: {error.reason}")
            unreadable.add(path.resolve())
            log.warning("training data: skipped %s (%s)", path, error.reason)
        else:
            good.append(path)
    return good


def split_identities(
    data_dir: Path,
    held_out_fraction: float,
    held_out_names: Sequence[str] | None,
    query_fraction: float,
    seed: int,
    max_pixels: int | None = None,
) -> Split:
    """Read ``data_dir`` and split it (deterministic for ``seed``).

    max_pixels: decode every image first (decompression-bomb guard ``Settings.max_image_pixels``)
    and skip unreadable ones (listed in ``Split.skipped``); None: no check.

    held_out_fraction: share of identities held out (rounded; ignored when ``held_out_names``).
    query_fraction: share of each training identity's queries held out (rounded, but at least one
    query stays for training, and identities with a single query keep it).

    Raises ValueError when fewer than two identities remain for training (negatives need two).
    """
    from pipeline.datasets.release import load_identity_folders

    dataset = load_identity_folders(Path(data_dir))
    for problem in dataset.problems:
        log.warning("training data: %s", problem)
    skipped: list[str] = []
    unreadable: set[Path] = set()
    if max_pixels is not None:
        for identity in dataset.identities:
            identity.references = _readable(identity.references, max_pixels, skipped, unreadable)
            identity.queries = _readable(identity.queries, max_pixels, skipped, unreadable)
        usable = [i for i in dataset.identities if i.references and i.queries]
        for identity in dataset.identities:
            if identity not in usable:
                skipped.append(f"{identity.name}: no readable reference or query left; identity skipped")
        dataset.identities = usable
    names = [i.name for i in dataset.identities]
    rng = np.random.default_rng([seed, 7])
    if held_out_names is not None:
        unknown = sorted(set(held_out_names) - set(names))
        if unknown:
            raise ValueError(f"held-out identities {unknown} are not in {data_dir}")
        held = set(held_out_names)
    else:
        n_held = int(round(held_out_fraction * len(names)))
        held = {names[i] for i in rng.permutation(len(names))[:n_held]}
    train, seen, unseen = [], [], []
    for identity in dataset.identities:
        queries = tuple(identity.queries)
        if identity.name in held:
            unseen.append(IdentityImages(identity.name, identity.reference, queries))
            continue
        n_eval = min(int(round(query_fraction * len(queries))), len(queries) - 1)
        order = rng.permutation(len(queries))
        eval_idx, train_idx = set(order[:n_eval].tolist()), sorted(order[n_eval:].tolist())
        train.append(IdentityImages(identity.name, identity.reference, tuple(queries[i] for i in train_idx)))
        if eval_idx:
            seen.append(IdentityImages(identity.name, identity.reference, tuple(queries[i] for i in sorted(eval_idx))))
    if len(train) < 2:
        raise ValueError(f"{data_dir}: {len(train)} training identities; negatives need at least 2")
    return Split(train, seen, unseen, list(dataset.problems), skipped, unreadable)


@dataclass(frozen=True)
class Example:
    """One training item: ``question`` about ``query`` (None: text only) for the person whose
    reference is ``reference``; ``answer`` is the target text. Both texts use ``<sks>`` for the
    person. ``positive``: recognition items only (True: the person is in the photo)."""

    reference: Path
    query: Path | None
    question: str
    answer: str
    kind: Literal["recognition", "qa"] = "recognition"
    positive: bool | None = None


def load_qa_examples(json_path: Path, data_dir: Path, split: Split) -> list[Example]:
    """The release's multiple-choice items as training items (question -> correct option's text).

    Image paths are relative to the JSON's folder, or else to ``data_dir``. Items about held-out
    identities or showing a held-out image are dropped (logged). The identity's folder name in an
    answer becomes ``<sks>`` (whole word), so answers that name the person train the concept token.
    """
    from pipeline.datasets.release import load_vqa_items

    json_path = Path(json_path)
    root = json_path.parent
    try:
        items = load_vqa_items(json_path, root)
    except Exception:  # paths relative to the data folder instead
        items = load_vqa_items(json_path, Path(data_dir))
    held = split.held_out_queries | split.unreadable
    train_refs = {i.reference.resolve() for i in split.train}
    examples: list[Example] = []
    dropped = 0
    for item in items:
        ref = item.reference.resolve()
        if ref in held or (item.query is not None and item.query.resolve() in held):
            dropped += 1  # a held-out or unreadable image
            continue
        answer = item.choices[item.answer]
        name = item.reference.parent.name
        if ref in train_refs and name:
            answer = re.sub(rf"(?<![\w<]){re.escape(name)}(?![\w>])", PLACEHOLDER, answer, flags=re.IGNORECASE)
        examples.append(Example(item.reference, item.query, item.question, answer, kind="qa"))
    if dropped:
        log.info("QA: %d of %d items dropped (held-out identity or image, or an unreadable image)", dropped, len(items))
    return examples


class ExampleSampler:
    """Draws training batches: recognition pairs (exactly half positive, the odd one random) plus,
    when QA items exist, Binomial(n, qa_fraction) QA items. ``paired``: every drawn person comes
    twice, with one of their own photos and with another person's, so the person-independent
    part of the gradient cancels within the batch. ``paraphrase_fraction``: share of recognition
    items asked with a paraphrase of ``RECOGNITION_QUESTION`` (drawn uniformly) instead of it.
    All randomness from ``rng`` (its state is saved with the training state, so a resumed run
    draws the same batches)."""

    def __init__(
        self,
        identities: Sequence[IdentityImages],
        qa: Sequence[Example] = (),
        rng: np.random.Generator | None = None,
        qa_fraction: float = 0.3,
        reference_from_queries: float = 0.0,
        paired: bool = True,
        paraphrase_fraction: float = 1 - MAIN_QUESTION_PROBABILITY,
    ) -> None:
        self.identities = list(identities)
        self.qa = list(qa)
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self.qa_fraction = qa_fraction if self.qa else 0.0
        self.reference_from_queries = reference_from_queries
        self.paired = paired
        self.paraphrase_fraction = paraphrase_fraction

    def _question(self) -> str:
        if self.rng.random() < 1 - self.paraphrase_fraction:  # one draw per item whatever the fraction
            return RECOGNITION_QUESTION
        return RECOGNITION_QUESTIONS[1 + int(self.rng.integers(len(RECOGNITION_QUESTIONS) - 1))]

    def _pair(self, positive: bool, index: int | None = None) -> Example:
        n = len(self.identities)
        index = int(self.rng.integers(n)) if index is None else index
        person = owner = self.identities[index]
        if not positive:
            other = int(self.rng.integers(n - 1))
            owner = self.identities[other + (other >= index)]
        query = owner.queries[int(self.rng.integers(len(owner.queries)))]
        reference = person.reference
        if positive and len(person.queries) > 1 and self.rng.random() < self.reference_from_queries:
            others = [q for q in person.queries if q != query]
            reference = others[int(self.rng.integers(len(others)))]
        return Example(
            reference, query, self._question(), YES_ANSWER if positive else NO_ANSWER, "recognition", positive
        )

    def sample(self, n: int) -> list[Example]:
        """``n`` examples in random order."""
        n_qa = int(self.rng.binomial(n, self.qa_fraction)) if self.qa_fraction > 0 else 0
        n_rec = n - n_qa
        examples = []
        if self.paired:  # each drawn person once with one of their photos and once with someone else's
            for _ in range(n_rec // 2):
                index = int(self.rng.integers(len(self.identities)))
                examples += [self._pair(True, index), self._pair(False, index)]
            if n_rec % 2:
                examples.append(self._pair(bool(self.rng.integers(2))))
        else:
            n_pos = n_rec // 2 + (int(self.rng.integers(2)) if n_rec % 2 else 0)
            examples = [self._pair(True) for _ in range(n_pos)] + [self._pair(False) for _ in range(n_rec - n_pos)]
        examples += [self.qa[int(i)] for i in self.rng.integers(len(self.qa), size=n_qa)] if n_qa else []
        return [examples[int(i)] for i in self.rng.permutation(len(examples))]


def write_identity_folders(root: Path, identities: Sequence[IdentityImages]) -> Path:
    """Lay ``identities`` out as ``root/NAME/ref_img.<ext>`` + ``root/NAME/<query file names>``
    (symlinks; copies where links are not possible), the format ``pipeline eval recognition`` reads.
    Side effect: creates ``root``. Returns ``root``."""
    import shutil

    root = Path(root)
    for identity in identities:
        folder = root / identity.name
        folder.mkdir(parents=True, exist_ok=True)
        targets = [(identity.reference, folder / f"ref_img{identity.reference.suffix}")]
        targets += [(q, folder / q.name) for q in identity.queries]
        for source, target in targets:
            if target.exists() or target.is_symlink():
                continue
            try:
                target.symlink_to(source.resolve())
            except OSError:
                shutil.copy2(source, target)
    return root
