"""A recognition test album in the release's identity-folder format, from faces that ship in packages.

Enrolled people with real variation: Eileen Collins (scikit-image ``astronaut``), Grace Hopper
(matplotlib sample) and the cameraman (scikit-image ``camera``, greyscale); public domain. Each
gets a reference and queries that vary what an album varies: mirror, crops, a close-up filling
the frame, a small face in a scene, JPEG quality, brightness, blur, a slight rotation, and a
composite with a stranger next to them.

Strangers come from the LFW subset bundled with scikit-image (``data.lfw_subset()``: 100 faces
of 25 x 25 px): each is enlarged to 150 px with a border. ``n_distractors`` of them are enrolled
as extra identities (reference = the face, query = an edited copy of the same photo: an easy
positive), which grows the gallery the way a family enrols dozens of people; the rest appear only
as unknown people beside enrolled ones. The faces are low-resolution, so the strangers resemble
each other more than sharp faces do: a pessimistic album for false names.

Deterministic for a ``seed``; needs scikit-image and matplotlib (the ``sample`` extra).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

from pipeline.datasets import sample_album

#: Face boxes (x, y, w, h) in pixels of the unedited photos (YuNet's, rounded).
REAL_FACES: dict[str, tuple[int, int, int, int]] = {
    "astronaut": (178, 63, 90, 114),
    "grace_hopper": (183, 120, 170, 213),
    "cameraman": (198, 120, 60, 76),
}
#: LFW subset faces usable as strangers (the first 100 entries are faces).
N_STRANGERS = 100


def _real(name: str) -> np.ndarray:
    if name == "astronaut":
        return sample_album.astronaut()
    if name == "grace_hopper":
        return sample_album.grace_hopper()
    from skimage import data

    return np.stack([np.asarray(data.camera(), dtype=np.uint8)] * 3, axis=-1)


def stranger(index: int) -> np.ndarray:
    """LFW subset face ``index`` (0-99) as a (300, 300, 3) RGB image, face about 150 px wide."""
    from skimage import data

    grey = Image.fromarray((np.asarray(data.lfw_subset()[index]) * 255).astype(np.uint8))
    face = np.asarray(grey.resize((150, 150), Image.Resampling.BICUBIC))
    padded = np.pad(face, 75, mode="edge")
    return np.stack([padded] * 3, axis=-1)


def _pil(image: np.ndarray) -> Image.Image:
    return Image.fromarray(np.ascontiguousarray(image))


def _crop(image: np.ndarray, box: tuple[int, int, int, int], margin: float) -> np.ndarray:
    x, y, w, h = box
    mx, my = round(margin * w), round(margin * h)
    height, width = image.shape[:2]
    return np.ascontiguousarray(
        image[max(0, y - my) : min(height, y + h + my), max(0, x - mx) : min(width, x + w + mx)]
    )


def _close_up(image: np.ndarray, box: tuple[int, int, int, int], fill: float) -> np.ndarray:
    x, y, w, h = box
    side = round(max(w, h) / fill)
    cx, cy = x + w // 2, y + h // 2
    patch = image[max(0, cy - side // 2) : cy + side // 2, max(0, cx - side // 2) : cx + side // 2]
    return np.asarray(_pil(patch).resize((patch.shape[1] * 4, patch.shape[0] * 4), Image.Resampling.BICUBIC))


def _small_in_scene(
    image: np.ndarray, box: tuple[int, int, int, int], face_px: int, rng: np.random.Generator
) -> np.ndarray:
    patch = _crop(image, box, 1.0)
    scale = face_px / box[2]
    small = np.asarray(
        _pil(patch).resize((max(1, round(patch.shape[1] * scale)), max(1, round(patch.shape[0] * scale))))
    )
    scene = np.full((480, 640, 3), rng.integers(60, 200), np.uint8)
    top, left = int(rng.integers(0, 480 - small.shape[0])), int(rng.integers(0, 640 - small.shape[1]))
    scene[top : top + small.shape[0], left : left + small.shape[1]] = small
    return scene


def _beside(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    return sample_album.side_by_side(left, right)


def _variants(
    image: np.ndarray, box: tuple[int, int, int, int], rng: np.random.Generator, other: np.ndarray
) -> list[np.ndarray]:
    pil = _pil(image)
    return [
        np.ascontiguousarray(image[:, ::-1]),
        _crop(image, box, 0.4),
        _close_up(image, box, 0.85),
        _small_in_scene(image, box, 48, rng),
        np.asarray(ImageEnhance.Brightness(pil).enhance(0.55)),
        np.asarray(pil.filter(ImageFilter.GaussianBlur(1.5))),
        np.asarray(pil.rotate(8, resample=Image.Resampling.BICUBIC, fillcolor=(128, 128, 128))),
        _beside(image, other),
    ]


def _edited(image: np.ndarray, k: int) -> np.ndarray:
    """A light edit of a stranger's photo: mirror, brightness or blur (by ``k``)."""
    pil = _pil(image[:, ::-1] if k % 2 == 0 else image)
    if k % 3 == 0:
        pil = ImageEnhance.Brightness(pil).enhance(0.8)
    elif k % 3 == 1:
        pil = pil.filter(ImageFilter.GaussianBlur(0.8))
    return np.asarray(pil)


def write_face_album(root: Path, n_distractors: int = 40, seed: int = 0, quality: int = 90) -> Path:
    """Write the album under ``root`` (created) in the release format; returns ``root``.

    Identities: the 3 real people (reference + 8 queries each) and ``n_distractors`` (0-90)
    enrolled strangers (reference + 1 query each). Strangers numbered from ``n_distractors`` on
    are never enrolled: they stand beside enrolled people in composites. Side effects: writes
    about 30 + 2 * ``n_distractors`` JPEG/PNG files.
    """
    if not 0 <= n_distractors <= N_STRANGERS - 10:
        raise ValueError(f"n_distractors must be between 0 and {N_STRANGERS - 10}, got {n_distractors}")
    rng = np.random.default_rng(seed)
    root = Path(root)
    unknown = list(range(n_distractors, N_STRANGERS))
    for name, box in REAL_FACES.items():
        image = _real(name)
        sample_album.save(image, root / name / "ref_img.png")
        other = stranger(unknown[int(rng.integers(0, len(unknown)))])
        for k, variant in enumerate(_variants(image, box, rng, other), start=1):
            sample_album.save(variant, root / name / f"query_img{k}.jpg", quality=quality)
    for index in range(n_distractors):
        face = stranger(index)
        folder = root / f"stranger_{index:02d}"
        sample_album.save(face, folder / "ref_img.png")
        query = _beside(_edited(face, index), stranger(unknown[index % len(unknown)]))
        sample_album.save(query, folder / "query_img1.jpg", quality=quality)
    return root
