"""Open-set identification: when a face may be given a name at all.

A 1:1 verification threshold (SFace's published 0.363) answers "are these two faces one
person?" for a single comparison. Naming a face in an album asks "is this face one of the N
people enrolled, and which?": an unknown face gets N chances to pass the threshold, so the
chance of a wrong name grows with N. The rule here:

1. **Gallery-aware threshold**: ``t(N) = match_threshold + gallery_slope * ln(N)`` for N enrolled
   people (N = 1: the 1:1 threshold). If impostor cosines are roughly normal, the maximum of N
   of them rises like ``sigma * sqrt(2 ln N)``; over the N range of a family album (1-1000)
   ``ln N`` fits the quantile that keeps the false-name rate per unknown face at the 1:1 level.
2. **Margin**: the best person must beat the face's second-best person by ``match_margin``
   (look-alikes and faces that resemble everyone are left unknown).
3. **Nameable faces**: faces narrower than ``min_face_px`` pixels or detected with a score below
   ``min_face_score`` are stored (and counted as people) but never named.

The defaults and the measurements behind them are in the README ("Naming faces"). Pure
numpy/scipy.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from pipeline.recognition.matching import Match, assign_people

if TYPE_CHECKING:
    from pipeline.config import Settings


@dataclass(frozen=True)
class NamingRule:
    """The open-set rule's parameters (see the module doc); ``from_settings`` reads them."""

    match_threshold: float = 0.363
    gallery_slope: float = 0.025
    match_margin: float = 0.1
    min_face_px: float = 20.0
    min_face_score: float = 0.7

    @classmethod
    def from_settings(cls, settings: Settings) -> NamingRule:
        return cls(
            match_threshold=settings.match_threshold,
            gallery_slope=settings.gallery_slope,
            match_margin=settings.match_margin,
            min_face_px=settings.min_face_px,
            min_face_score=settings.min_face_score,
        )

    def threshold(self, n_people: int) -> float:
        """The cosine a face needs with ``n_people`` enrolled (at least the 1:1 threshold)."""
        return self.match_threshold + self.gallery_slope * math.log(max(1, n_people))

    def nameable(self, width_px: float, det_score: float) -> bool:
        """Whether a face ``width_px`` pixels wide, detected with ``det_score``, may be named."""
        return width_px >= self.min_face_px and det_score >= self.min_face_score


def name_faces(
    scores: np.ndarray,
    person_ids: Sequence[int],
    rule: NamingRule,
    *,
    face_widths_px: Sequence[float],
    det_scores: Sequence[float],
    fixed: Mapping[int, int] = {},
    forbidden: Collection[tuple[int, int]] = (),
    n_people: int | None = None,
) -> list[Match]:
    """Name the faces of one photo by the open-set rule; one :class:`Match` per row of ``scores``.

    ``scores``: (F, P) face-person scores (cosine, or fused with the profile's recognition evidence), columns in the
    order of ``person_ids``; ``face_widths_px``/``det_scores``: (F,) box width in pixels of the
    image and detector confidence; ``fixed``/``forbidden``: a user's decisions (see
    :func:`~pipeline.recognition.matching.assign_people`); ``n_people``: gallery size (default:
    the number of columns).
    """
    n = len(person_ids) if n_people is None else n_people
    nameable = [rule.nameable(w, d) for w, d in zip(face_widths_px, det_scores, strict=True)]
    return assign_people(
        scores,
        person_ids,
        rule.threshold(n),
        fixed=fixed,
        forbidden=forbidden,
        margin=rule.match_margin,
        nameable=nameable,
    )
