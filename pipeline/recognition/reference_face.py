"""Which face of a reference photo is the person: one rule for enrolment and evaluation.

A reference photo names one person. Its face is the only face, or the *dominant* one: a face
whose box area is at least :data:`DOMINANT_AREA_RATIO` times every other face's (twice as wide
and tall: a portrait with someone small in the background). Two faces of similar size are two
real people and the caller must choose (``pipeline enroll --face N``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar

#: A face dominates when its box area is at least this many times every other face's area.
DOMINANT_AREA_RATIO = 4.0


class _Boxed(Protocol):
    @property
    def box(self) -> tuple[float, float, float, float]: ...

    @property
    def score(self) -> float: ...


F = TypeVar("F", bound=_Boxed)


def box_area(face: _Boxed) -> float:
    """Relative area (w * h) of a face's box."""
    return face.box[2] * face.box[3]


def dominant_face(faces: Sequence[F]) -> F | None:
    """The one face, or the dominant face (see module doc), or None when there is no face or no
    single face dominates."""
    if not faces:
        return None
    ranked = sorted(faces, key=lambda f: (box_area(f), f.score), reverse=True)
    if len(ranked) == 1 or box_area(ranked[0]) >= DOMINANT_AREA_RATIO * box_area(ranked[1]):
        return ranked[0]
    return None


def where_words(box: tuple[float, float, float, float]) -> str:
    """Plain words for where a relative box lies and how big it is, e.g. 'left, top; 25% of the
    width'."""
    x, y, w, h = box
    cx, cy = x + w / 2, y + h / 2
    horizontal = "left" if cx < 1 / 3 else "right" if cx > 2 / 3 else "centre"
    vertical = "top" if cy < 1 / 3 else "bottom" if cy > 2 / 3 else "middle"
    return f"{horizontal}, {vertical}; {100 * w:.0f}% of the width"


def describe_faces(faces: Sequence[_Boxed]) -> str:
    """One line per face, numbered as ``--face`` counts them (0 = leftmost)."""
    return "; ".join(f"{i}: {where_words(f.box)}, score {f.score:.2f}" for i, f in enumerate(faces))
