"""One rule for "these two detections are the same face", used by every caller of the detector.

YuNet's own non-maximum suppression compares boxes by IoU, so a small box lying inside a large
one (a close-up seen once whole and once as a part, or the same face found by two detector
passes at different scales) survives it. Here two boxes are the same face when their
intersection covers at least :data:`SAME_FACE_OVERLAP` of the *smaller* box; of such a group the
most confident detection is kept. Enrolment, tagging and evaluation all get their faces from
:meth:`pipeline.recognition.faces.FaceModel.detect`, which applies this rule, so they agree on
how many faces a photo has.

Pure numpy; boxes in any one unit (pixels or relative), as (x, y, w, h).
"""

from __future__ import annotations

import numpy as np

#: Fraction of the smaller box that the intersection must cover for two boxes to be one face.
#: Two real people side by side overlap far less (cheek to cheek: under 0.3 of the smaller box);
#: a part-of-face detection inside a close-up covers 0.8-1.0 of itself.
SAME_FACE_OVERLAP = 0.6


def containment(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection area of boxes ``a`` and ``b`` (x, y, w, h) over the smaller box's area, in [0, 1]
    (0 when either box is empty)."""
    ix = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    iy = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    smaller = min(float(a[2] * a[3]), float(b[2] * b[3]))
    if ix <= 0 or iy <= 0 or smaller <= 0:
        return 0.0
    return float(ix * iy) / smaller


def keep_distinct_faces(boxes: np.ndarray, scores: np.ndarray) -> list[int]:
    """Indices of the detections to keep, most confident first.

    ``boxes``: (N, 4) x, y, w, h; ``scores``: (N,) detector confidences. Greedy: walk the
    detections by falling score and keep one unless it is the same face
    (:func:`containment` >= :data:`SAME_FACE_OVERLAP`) as one already kept.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    order = np.argsort(-np.asarray(scores, dtype=np.float64).reshape(-1), kind="stable")
    kept: list[int] = []
    for i in order:
        if all(containment(boxes[i], boxes[j]) < SAME_FACE_OVERLAP for j in kept):
            kept.append(int(i))
    return kept
