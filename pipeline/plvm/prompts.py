"""PLVM prompts (Vicuna v1 format) generalised to several concepts, as token *segments*.

A prompt is a list of :class:`Segment`s that ``lvlm`` turns into token ids piece by piece, so the
token layout is exact and independent of how a tokenizer splits text around added tokens::

    [BOS] SYSTEM ( <Name> " is" <Name soft x16> "." )*  " USER:" [image x N] "\\n" question " ASSISTANT:"

Each text segment is tokenized on its own, after :func:`release_text` has applied the release's
spacing (see there), so the ids equal those of the released code: with LLaVA-1.5's LLaMA tokenizer
``... ▁US ER : ▁ [IMG] ▁ <0x0A> Is [C] ▁in ▁this ▁photo ? ▁A SS IST ANT :``.

Token naming (added to the tokenizer as special tokens): the concept token of a person is
``<Name>`` (whitespace -> "_", angle brackets dropped, e.g. ``<Mary_Ann>``), and each person has
its OWN soft tokens ``<Name_soft_0>`` ... ``<Name_soft_15>`` (not shared placeholders), so several
people in one prompt each get their own rows. A space right before a concept token is absorbed
by it (no stray space token); text right after it starts with one space token (see
:func:`release_text`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

SYSTEM_PROMPT = (
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions."
)
IMAGE_TOKEN = "<image>"
PLACEHOLDER = "<sks>"
RECOGNITION_QUESTION = "Is <sks> in this photo?"
CAPTION_QUESTION = "Write a one-sentence caption for this photo, naming the people in it."
USER = " USER:"
ASSISTANT = " ASSISTANT:"

SegmentKind = Literal["bos", "text", "concept", "soft", "image"]


@dataclass(frozen=True)
class Segment:
    """One piece of a prompt: literal text, BOS, the image block, or a person's concept/soft tokens."""

    kind: SegmentKind
    text: str = ""  # for kind == "text"
    name: str = ""  # for kind in ("concept", "soft"): the person's display name


def concept_token(name: str) -> str:
    """Token string of a person's concept token: "Susan" -> "<Susan>", "Mary Ann" -> "<Mary_Ann>"."""
    clean = re.sub(r"\s+", "_", name.strip()).replace("<", "").replace(">", "")
    if not clean:
        raise ValueError(f"person name {name!r} gives an empty concept token")
    return f"<{clean}>"


def soft_tokens(name: str, n_soft: int) -> list[str]:
    """Token strings of a person's soft tokens: <Susan_soft_0> ... <Susan_soft_{n_soft-1}>."""
    base = concept_token(name)[1:-1]
    return [f"<{base}_soft_{i}>" for i in range(n_soft)]


def _check_unique(names: Sequence[str]) -> None:
    tokens = [concept_token(n) for n in names]
    if len(set(tokens)) != len(tokens):
        raise ValueError(f"people {list(names)} do not have distinct concept tokens {tokens}")


def render_question(question: str, names: Sequence[str]) -> str:
    """Replace enrolled names (case-insensitive, whole word) and ``<sks>`` with concept tokens.

    ``<sks>`` is allowed only when exactly one person is given. Idempotent: tokens already in the
    text are left alone. Longer names win ("Mary Ann" before "Mary").
    """
    _check_unique(names)
    question = unicodedata.normalize("NFC", question)  # a name typed decomposed still matches
    names = [unicodedata.normalize("NFC", n) for n in names]
    if PLACEHOLDER in question:
        if len(names) != 1:
            raise ValueError(f"question {question!r} uses {PLACEHOLDER} but {len(names)} people were given (need 1)")
        question = question.replace(PLACEHOLDER, concept_token(names[0]))
    if not names:
        return question
    by_lower = {n.strip().lower(): concept_token(n) for n in names}
    alternation = "|".join(re.escape(n.strip()) for n in sorted(names, key=lambda n: -len(n.strip())))
    pattern = re.compile(rf"(?<![\w<])({alternation})(?![\w>])", re.IGNORECASE)
    return pattern.sub(lambda m: by_lower[m.group(1).lower()], question)


def split_concepts(text: str, names: Sequence[str]) -> list[Segment]:
    """Split rendered text at concept tokens of ``names``: text and concept segments, in order.

    A space right before a concept token is dropped (the token absorbs it).
    """
    if not names:
        return [Segment("text", text)] if text else []
    token_to_name = {concept_token(n): n for n in names}
    pattern = re.compile("(" + "|".join(re.escape(t) for t in token_to_name) + ")")
    segments: list[Segment] = []
    for i, piece in enumerate(pattern.split(text)):
        if i % 2:  # a concept token
            if segments and segments[-1].kind == "text":
                stripped = segments[-1].text.rstrip(" ")
                segments[-1] = Segment("text", stripped)
                if not stripped:
                    segments.pop()
            segments.append(Segment("concept", name=token_to_name[piece]))
        elif piece:
            segments.append(Segment("text", piece))
    return segments


def release_text(text: str, previous: SegmentKind | None, following: SegmentKind | None) -> str:
    """The string a text segment is tokenized as (as a continuation, without the tokenizer's dummy
    prefix, except right after BOS), given the kinds of its neighbouring segments.

    The release builds prompts as one string, splits it at ``<image>`` and tokenizes each chunk with
    SentencePiece's dummy prefix (LLaVA's ``tokenizer_image_token``), and its tokenizer splits text
    at added tokens and strips the spaces around them. In pieces that gives:

    - before the image block, one trailing space: ``" USER:"`` -> ``▁US ER : ▁`` (the lone ``▁``, 29871);
    - after the image block, one leading space: ``"\\nIs"`` -> ``▁ <0x0A> Is``;
    - after a concept token, exactly one leading space: ``"?"`` -> ``▁?``, ``"'s"`` -> ``▁' s``,
      ``" in"`` -> ``▁in`` (a space before a concept token is dropped by :func:`split_concepts`);
    - before a concept token, no trailing space (the release strips it): ``" USER: "`` + ``<sks>`` in a
      text-only prompt -> ``▁US ER : [C]``;
    - after soft tokens and elsewhere, the text as it is (``"."`` -> ``.``).
    """
    if previous == "concept":
        text = " " + text.lstrip(" ")
    elif previous == "image":
        text = " " + text
    if following == "image":
        text += " "
    elif following == "concept":
        text = text.rstrip(" ")
    return text


def merge_text(segments: Iterable[Segment]) -> list[Segment]:
    """Join adjacent text segments and drop empty ones."""
    out: list[Segment] = []
    for seg in segments:
        if seg.kind == "text":
            if not seg.text:
                continue
            if out and out[-1].kind == "text":
                out[-1] = Segment("text", out[-1].text + seg.text)
                continue
        out.append(seg)
    return out


def prompt_segments(question: str, names: Sequence[str], with_image: bool = True) -> list[Segment]:
    """The full prompt for ``question`` with each of ``names`` introduced in the system part.

    question: raw text; names in it (and ``<sks>``) are rendered with :func:`render_question`.
    with_image: False for text-only questions (no image block, question after " USER: ").
    """
    _check_unique(names)
    segments: list[Segment] = [Segment("bos"), Segment("text", SYSTEM_PROMPT)]
    for name in names:  # structural pieces stay separate segments: exact layout per person
        segments += [
            Segment("concept", name=name),
            Segment("text", " is"),
            Segment("soft", name=name),
            Segment("text", "."),
        ]
    segments.append(Segment("text", USER))
    if with_image:
        segments.append(Segment("image"))
    opening = Segment("text", "\n" if with_image else " ")
    tail = [opening, *split_concepts(render_question(question, names), names), Segment("text", ASSISTANT)]
    return segments + merge_text(tail)


def answer_segments(answer: str, names: Sequence[str]) -> list[Segment]:
    """An answer continuation (" " + answer, names rendered), e.g. a multiple-choice option."""
    return merge_text(split_concepts(" " + render_question(answer, names), names))


def prompt_text(segments: Sequence[Segment], n_soft: int, n_image_tokens: int = 1) -> str:
    """Human-readable prompt string (for logs and tests), with token strings for special pieces."""
    parts: list[str] = []
    for seg in segments:
        if seg.kind == "bos":
            continue
        if seg.kind == "text":
            parts.append(seg.text)
        elif seg.kind == "concept":
            parts.append((" " if parts and not parts[-1].endswith((" ", "\n")) else "") + concept_token(seg.name))
        elif seg.kind == "soft":
            parts.append(" " + "".join(soft_tokens(seg.name, n_soft)))
        else:
            parts.append(" " + IMAGE_TOKEN * n_image_tokens)
    return "".join(parts)


def tokens_to_names(text: str, names: Sequence[str]) -> str:
    """Replace concept token strings in generated text by display names ("<Susan> and" -> "Susan and").

    A space is inserted when a name would directly follow a letter or digit ("<A><B>" -> "A B").
    """
    if not names:
        return text
    token_to_name = {concept_token(n): n for n in names}
    pattern = re.compile("(" + "|".join(re.escape(t) for t in sorted(token_to_name, key=len, reverse=True)) + ")")
    out = ""
    for i, piece in enumerate(pattern.split(text)):
        if i % 2:
            piece = (" " if out and out[-1].isalnum() else "") + token_to_name[piece]
        out += piece
    return out
