"""The release's evaluation data (Yo'LLaVA/MyVLM style): recognition folders and multiple-choice questions.

Recognition: one folder per identity, ``NAME/ref_img.png`` plus ``NAME/query_img*.{png,jpg,...}``,
or the Yo'LLaVA layout of the same release, ``NAME/ref_img.png`` plus numbered queries ``NAME/0.png``
... ``NAME/9.png``. An identity may have several references (``ref_img.png``, ``ref_img0.png``, ...);
all are used. For each identity its own queries are positives and every other identity's queries
are negatives.

Questions: a JSON list of ``{ref_img, query_img (absent for text-only), question (with <sks>),
multiple_choice {"A": ..., "B": ...}, correct_answer}``, paths relative to a root folder. Some of the
release's items have ``<sks>`` only in the options (``"<sks>"``, ``"the person next to <sks>"``) or
nowhere; they are loaded as they are (the concept is still the item's reference) and listed by
:func:`odd_items`.

Both loaders only read directory listings and JSON; no image is decoded here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from pipeline.errors import PipelineError

IMAGE_SUFFIXES: frozenset[str] = frozenset({".png", ".jpg", ".jpeg", ".webp"})
REFERENCE_STEM = "ref_img"
QUERY_PREFIX = "query_img"
_REFERENCE = re.compile(rf"{REFERENCE_STEM}\d*")  # ref_img, ref_img0, ref_img1, ...
CONCEPT_PLACEHOLDER = "<sks>"


@dataclass
class Identity:
    """One person: the folder name, its reference images (``ref_img`` first, then ``ref_img0``, ...)
    and its query images (sorted naturally)."""

    name: str
    references: list[Path]
    queries: list[Path]

    @property
    def reference(self) -> Path:
        """The first reference image (``ref_img.*`` when present)."""
        return self.references[0]


@dataclass
class IdentityDataset:
    """A loaded recognition folder.

    ``identities`` is sorted by name. ``problems`` holds one readable line per identity folder that
    could not be used (no reference, no queries); such folders are left out of
    ``identities`` but never silently. ``ignored`` lists files and folders that are not part of the
    format (notes, hidden files, sub-folders) and were skipped.
    """

    root: Path
    identities: list[Identity]
    problems: list[str] = field(default_factory=list)
    ignored: list[Path] = field(default_factory=list)

    @property
    def n_queries(self) -> int:
        """Total number of query images over all identities."""
        return sum(len(identity.queries) for identity in self.identities)


class Pair(NamedTuple):
    """One recognition question: "is ``identity`` in ``query``?", whose true owner is ``owner``."""

    identity: str
    query: Path
    owner: str
    is_positive: bool


def _natural_key(path: Path) -> tuple[Any, ...]:
    """Sort key that puts ``query_img2`` before ``query_img10``."""
    parts = re.split(r"(\d+)", path.name.lower())
    return tuple(int(part) if part.isdigit() else part for part in parts)


def _is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES


def _load_identity(folder: Path, problems: list[str], ignored: list[Path]) -> Identity | None:
    references: list[Path] = []
    queries: list[Path] = []
    for entry in sorted(folder.iterdir(), key=_natural_key):
        stem = entry.stem.lower()
        if _is_image(entry) and _REFERENCE.fullmatch(stem):
            references.append(entry)
        elif _is_image(entry) and (stem.startswith(QUERY_PREFIX) or stem.isdigit()):
            queries.append(entry)
        else:
            ignored.append(entry)
    references.sort(key=lambda path: (path.stem.lower() != REFERENCE_STEM, _natural_key(path)))  # ref_img first
    if not references:
        problems.append(f"{folder.name}: no reference image ({REFERENCE_STEM}.png/.jpg/.jpeg/.webp)")
    if not queries:
        problems.append(f"{folder.name}: no query images ({QUERY_PREFIX}* or 0.png, 1.png, ...)")
    if not references or not queries:
        return None
    return Identity(name=folder.name, references=references, queries=queries)


def load_identity_folders(root: Path) -> IdentityDataset:
    """Read a recognition folder in the release's format.

    Args:
        root: folder holding one sub-folder per identity.

    Returns:
        The usable identities (sorted by name) with the problems and ignored entries listed.
        A root without any identity folder yields no identities and one problem line.

    Raises:
        FileNotFoundError: ``root`` is not a directory.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"recognition data folder {root} does not exist or is not a folder")
    identities: list[Identity] = []
    problems: list[str] = []
    ignored: list[Path] = []
    for entry in sorted(root.iterdir(), key=_natural_key):
        if not entry.is_dir() or entry.name.startswith("."):
            ignored.append(entry)
            continue
        identity = _load_identity(entry, problems, ignored)
        if identity is not None:
            identities.append(identity)
    if not identities and not problems:
        problems.append(f"{root}: no identity folders (expected NAME/{REFERENCE_STEM}.png and NAME/{QUERY_PREFIX}*)")
    return IdentityDataset(root=root, identities=identities, problems=problems, ignored=ignored)


def pairs(dataset: IdentityDataset) -> Iterator[Pair]:
    """Every (identity, query) question of the recognition benchmark.

    Yields ``len(identities) * dataset.n_queries`` pairs, identity-major, then owner, then query;
    exactly ``dataset.n_queries`` of them are positives (identity == owner).
    """
    for identity in dataset.identities:
        for owner in dataset.identities:
            for query in owner.queries:
                yield Pair(identity.name, query, owner.name, identity.name == owner.name)


@dataclass(frozen=True)
class VqaItem:
    """One multiple-choice question about the person shown in ``reference``.

    ``query`` is None for text-only questions. ``answer`` is always a key of ``choices``.
    ``index`` is the item's position in the JSON list (for error messages and reports).
    """

    index: int
    reference: Path
    query: Path | None
    question: str
    choices: dict[str, str]
    answer: str

    @property
    def text_only(self) -> bool:
        """True when the question comes without a query image."""
        return self.query is None

    @property
    def placeholder_in(self) -> str:
        """Where ``<sks>`` occurs: "question", "options" (only there) or "nowhere"."""
        if CONCEPT_PLACEHOLDER in self.question:
            return "question"
        return "options" if any(CONCEPT_PLACEHOLDER in text for text in self.choices.values()) else "nowhere"


def odd_items(items: list[VqaItem]) -> list[str]:
    """One line per item whose question does not contain ``<sks>`` (loaded and scored all the same)."""
    where = {"options": "only in the options", "nowhere": "nowhere"}
    return [
        f"item {item.index}: {CONCEPT_PLACEHOLDER} {where[item.placeholder_in]} ({item.question!r})"
        for item in items
        if item.placeholder_in != "question"
    ]


class VqaFormatError(PipelineError, ValueError):
    """The question JSON does not follow the release's format; the message names each bad item."""


def _normalise_answer(raw: Any, choices: dict[str, str]) -> str:
    """Map ``"A"``, ``"(a)"``, ``"A."`` or the option text itself to its key."""
    if not isinstance(raw, (str, int, float)) or isinstance(raw, bool):
        raise ValueError(f"correct_answer must be a string, got {type(raw).__name__}")
    text = str(raw).strip()
    by_key = {key.strip().lower(): key for key in choices}
    bare = text.strip("()[] ").rstrip(".):").strip().lower()
    if bare in by_key:
        return by_key[bare]
    matches = [key for key, option in choices.items() if option.strip().lower() == text.lower()]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise ValueError(f"correct_answer {text!r} matches several options {matches}")
    raise ValueError(f"correct_answer {text!r} is neither a key nor the text of an option in {sorted(choices)}")


def _resolve_image(raw: Any, key: str, root: Path, check_files: bool) -> Path:
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError(f"{key} must be a non-empty path string, got {raw!r}")
    path = root / raw
    if check_files and not path.is_file():
        raise ValueError(f"{key} {path} does not exist")
    return path


def _parse_item(index: int, raw: Any, root: Path, check_files: bool) -> VqaItem:
    if not isinstance(raw, dict):
        raise ValueError(f"must be an object, got {type(raw).__name__}")
    missing = [key for key in ("ref_img", "question", "multiple_choice", "correct_answer") if key not in raw]
    if missing:
        raise ValueError(f"missing key(s) {missing}")
    question = raw["question"]
    if not isinstance(question, str) or not question.strip():
        raise ValueError(f"question must be a non-empty string, got {question!r}")
    options = raw["multiple_choice"]
    if not isinstance(options, dict) or len(options) < 2:
        raise ValueError(f"multiple_choice must be an object with at least 2 options, got {options!r}")
    if not all(isinstance(value, (str, int, float)) and not isinstance(value, bool) for value in options.values()):
        raise ValueError(f"multiple_choice values must be strings, got {options!r}")
    choices = {str(key): str(value) for key, value in options.items()}
    answer = _normalise_answer(raw["correct_answer"], choices)
    reference = _resolve_image(raw["ref_img"], "ref_img", root, check_files)
    query_raw = raw.get("query_img")
    query = None if query_raw is None else _resolve_image(query_raw, "query_img", root, check_files)
    return VqaItem(index, reference, query, question, choices, answer)


def load_vqa_items(json_path: Path, root: Path | None = None, *, check_files: bool = True) -> list[VqaItem]:
    """Read and validate the release's multiple-choice question file.

    Args:
        json_path: the JSON list of items.
        root: folder the image paths are relative to; defaults to the JSON file's folder.
        check_files: also require every referenced image to exist.

    Returns:
        One :class:`VqaItem` per JSON item, in file order, answers normalised to option keys. Items
        without ``<sks>`` in the question are kept (see :func:`odd_items`).

    Raises:
        FileNotFoundError: ``json_path`` does not exist.
        VqaFormatError: the file is not a JSON list, or items are malformed; the message lists
            every bad item as ``item <index>: <reason>``.
    """
    json_path = Path(json_path)
    root = json_path.parent if root is None else Path(root)
    try:
        data = json.loads(json_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise VqaFormatError(f"{json_path}: not valid JSON ({error})") from error
    if not isinstance(data, list):
        raise VqaFormatError(f"{json_path}: expected a JSON list of question items, got {type(data).__name__}")
    items: list[VqaItem] = []
    errors: list[str] = []
    for index, raw in enumerate(data):
        try:
            items.append(_parse_item(index, raw, root, check_files))
        except ValueError as error:
            errors.append(f"item {index}: {error}")
    if errors:
        shown = "\n  ".join(errors[:20])
        more = f"\n  ... and {len(errors) - 20} more" if len(errors) > 20 else ""
        raise VqaFormatError(f"{json_path}: {len(errors)} bad item(s) of {len(data)}:\n  {shown}{more}")
    return items
