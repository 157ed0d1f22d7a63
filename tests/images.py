"""Real test photos and simple edits of them, shared by the test suite.

Every function returns a new (H, W, 3) RGB uint8 array the caller may modify, or writes a file.
The photos are public domain and ship with installed packages (no network):

* :func:`astronaut`: Eileen Collins, NASA portrait, from scikit-image (512 x 512);
* :func:`grace_hopper`: Grace Hopper, US Navy portrait, from matplotlib's sample data (600 x 512);
* :func:`no_face`: a cup of coffee, from scikit-image (400 x 600).

Checked with the real YuNet + SFace (``pipeline.recognition.faces.FaceModel()`` defaults, OpenCV 4.14):
number of faces found, and cosine of each face to the face found in the unedited astronaut /
Grace Hopper photo, as "astronaut / grace_hopper" (threshold 0.363; the other person scores
0.21 or less in every row):

=============================================  =====  ===========================
image                                          faces  cosine to the same person
=============================================  =====  ===========================
astronaut() vs grace_hopper()                  1, 1   0.181 (different people)
no_face()                                      0      -
flip(astronaut()) / flip(grace_hopper())       1      0.948 / 0.955
crop_around_face(img, FACE, margin=1.0)        1      0.973 / 0.974
crop_around_face(img, FACE, margin=0.5)        1      0.942 / 0.974
crop_around_face(img, FACE, margin=0.25)       1      0.948 / 0.953
crop_around_face(img, FACE, margin=0.0)        1      0.869 / 0.930  (box only)
rescale(img, 4.0) (2048 / 2400 px)             1      0.968 / 0.936
side_by_side(astronaut(), grace_hopper())      2      1.000 / 1.000  (left, right)
side_by_side(grace_hopper(), astronaut(), 20)  2      1.000 / 0.986  (left, right)
save_jpeg(img, quality=90), load_rgb           1      0.995 / 0.998
small_face_scene(img, FACE, 40)                1      0.907 / 0.915
small_face_scene(img, FACE, 32)                1      0.839 / 0.815
small_face_scene(img, FACE, 20)                1      0.690 / 0.685
small_face_scene(img, FACE, 12)                1      0.421 / 0.475  (enlarged pass)
small_face_scene(img, FACE, 8)                 1      0.155 / 0.223  (not nameable)
=============================================  =====  ===========================

Also without a face: skimage's rocket, chelsea, cat, page, text and a grey gradient (camera,
the cameraman, has one face). Every crop and the flip keep one detectable face above threshold.
"""

from __future__ import annotations

from functools import cache, lru_cache
from pathlib import Path

import numpy as np

from pipeline.datasets import sample_album as sample

Box = tuple[int, int, int, int]

#: Face boxes (x, y, w, h) in pixels of the unedited photos, rounded from YuNet's output.
ASTRONAUT_FACE: Box = (178, 63, 90, 114)
GRACE_HOPPER_FACE: Box = (183, 120, 170, 213)


# The photos come from pipeline.datasets.sample_album (the demo album uses the same loaders); cached here.
_astronaut = lru_cache(maxsize=None)(sample.astronaut)
_grace_hopper = lru_cache(maxsize=None)(sample.grace_hopper)
_coffee = lru_cache(maxsize=None)(sample.no_face)


@cache
def _camera() -> np.ndarray:
    from skimage import data

    return np.stack([data.camera()] * 3, axis=-1)


def astronaut() -> np.ndarray:
    """Eileen Collins, (512, 512, 3); one face at :data:`ASTRONAUT_FACE`."""
    return _astronaut().copy()


def grace_hopper() -> np.ndarray:
    """Grace Hopper, (600, 512, 3); one face at :data:`GRACE_HOPPER_FACE`."""
    return _grace_hopper().copy()


def camera() -> np.ndarray:
    """scikit-image's cameraman (grey, as RGB), (512, 512, 3): a third person, one face."""
    return _camera().copy()


def no_face() -> np.ndarray:
    """A cup of coffee on a saucer, (400, 600, 3); YuNet finds no face in it."""
    return _coffee().copy()


def side_by_side(left: np.ndarray, right: np.ndarray, gap: int = 0, fill: int = 0) -> np.ndarray:
    """``left`` and ``right`` next to each other, tops aligned.

    The shorter image is padded at the bottom with ``fill`` so both have the taller height;
    ``gap`` columns of ``fill`` separate them. ``left`` keeps its pixel coordinates; ``right``
    starts at column ``left.shape[1] + gap``.
    """
    height = max(left.shape[0], right.shape[0])
    out = np.full((height, left.shape[1] + gap + right.shape[1], 3), fill, np.uint8)
    out[: left.shape[0], : left.shape[1]] = left
    out[: right.shape[0], left.shape[1] + gap :] = right
    return out


def flip(image: np.ndarray) -> np.ndarray:
    """Mirror image (left <-> right)."""
    return np.ascontiguousarray(image[:, ::-1])


def crop(image: np.ndarray, box: Box) -> np.ndarray:
    """The pixels inside ``box`` = (x, y, w, h), clipped to the image."""
    x, y, w, h = box
    return image[max(0, y) : max(0, y + h), max(0, x) : max(0, x + w)].copy()


def crop_around_face(image: np.ndarray, face: Box, margin: float = 0.5) -> np.ndarray:
    """Crop keeping ``face`` (x, y, w, h pixels) plus ``margin`` times its width/height on each
    side, clipped to the image. ``margin=0`` keeps the box only."""
    x, y, w, h = face
    mx, my = round(margin * w), round(margin * h)
    return crop(image, (x - mx, y - my, w + 2 * mx, h + 2 * my))


def rescale(image: np.ndarray, factor: float) -> np.ndarray:
    """The image resized by ``factor`` (bicubic up, area-averaged down), at least 1 x 1 px."""
    from PIL import Image

    height, width = image.shape[:2]
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    resample = Image.Resampling.BICUBIC if factor >= 1 else Image.Resampling.BOX
    return np.asarray(Image.fromarray(image).resize(size, resample))


def small_face_scene(
    image: np.ndarray, face: Box, face_px: int, size: tuple[int, int] = (480, 640), at: tuple[int, int] = (300, 200)
) -> np.ndarray:
    """A ``size`` = (H, W) grey scene with the face region of ``image`` (``face`` plus a margin
    of one face size) shrunk so the face box is ``face_px`` wide, pasted with its top-left
    corner at ``at`` = (x, y). For minimal-face-size tests."""
    patch = crop_around_face(image, face, margin=1.0)
    patch = rescale(patch, face_px / face[2])
    out = np.full((size[0], size[1], 3), 128, np.uint8)
    x, y = at
    h, w = min(patch.shape[0], size[0] - y), min(patch.shape[1], size[1] - x)
    out[y : y + h, x : x + w] = patch[:h, :w]
    return out


def save_jpeg(image: np.ndarray, path: str | Path, quality: int = 90) -> Path:
    """Write ``image`` as a baseline JPEG (creates parent folders); returns the path."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, format="JPEG", quality=quality)
    return path


def save_png(image: np.ndarray, path: str | Path) -> Path:
    """Write ``image`` as a PNG (creates parent folders); returns the path."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, format="PNG")
    return path


def load_rgb(path: str | Path) -> np.ndarray:
    """Read an image file back as (H, W, 3) RGB uint8 (no EXIF handling)."""
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))
