"""A small sample album from public-domain photos that ship in packages.

Eileen Collins (``skimage.data.astronaut()``, NASA, public domain) and Grace Hopper
(matplotlib's ``grace_hopper.jpg`` sample, US Navy, public domain). Needs scikit-image and
matplotlib (the ``sample`` extra).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def astronaut() -> np.ndarray:
    """Eileen Collins, (512, 512, 3) RGB uint8."""
    from skimage import data

    return np.asarray(data.astronaut(), dtype=np.uint8)


def grace_hopper() -> np.ndarray:
    """Grace Hopper, (600, 512, 3) RGB uint8."""
    from matplotlib import cbook

    handle = cbook.get_sample_data("grace_hopper.jpg")
    assert not isinstance(handle, np.ndarray)  # only .npy/.npz samples load as arrays; a .jpg opens as a file
    with handle:
        return np.asarray(Image.open(handle).convert("RGB"), dtype=np.uint8)


def no_face() -> np.ndarray:
    """A photo with no face in it (scikit-image's coffee cup), RGB uint8."""
    from skimage import data

    return np.asarray(data.coffee(), dtype=np.uint8)


def side_by_side(left: np.ndarray, right: np.ndarray, gap: int = 16) -> np.ndarray:
    """Both images on one canvas, left to right, same height (the shorter one is padded)."""
    height = max(left.shape[0], right.shape[0])
    canvas = np.full((height, left.shape[1] + gap + right.shape[1], 3), 235, dtype=np.uint8)
    canvas[: left.shape[0], : left.shape[1]] = left
    canvas[: right.shape[0], left.shape[1] + gap :] = right
    return canvas


def flip(image: np.ndarray) -> np.ndarray:
    """Mirror left-right."""
    return np.ascontiguousarray(image[:, ::-1])


def crop(image: np.ndarray, top: float, left: float, bottom: float, right: float) -> np.ndarray:
    """Crop by fractions of the height/width."""
    h, w = image.shape[:2]
    return np.ascontiguousarray(image[int(top * h) : int(bottom * h), int(left * w) : int(right * w)])


def save(image: np.ndarray, path: Path, quality: int = 92) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pil = Image.fromarray(image)
    if path.suffix.lower() in (".jpg", ".jpeg"):
        pil.save(path, quality=quality)
    else:
        pil.save(path)
    return path


def build_sample_album(album: Path, references: Path) -> dict[str, Path]:
    """Write the album (8 photos) and one reference photo per person; return {name: reference}.

    Album: each person alone, cropped and mirrored, both side by side (twice, both orders), a
    photo with no face, and a rotated-by-EXIF copy.
    """
    a, g = astronaut(), grace_hopper()
    refs = {
        "Eileen": save(crop(a, 0.0, 0.2, 0.6, 0.8), references / "eileen.jpg"),
        "Grace": save(crop(g, 0.0, 0.1, 0.7, 0.9), references / "grace.jpg"),
    }
    save(a, album / "eileen-at-nasa.jpg")
    save(flip(g), album / "grace-mirrored.jpg")
    save(side_by_side(a, g), album / "eileen-and-grace.jpg")
    save(side_by_side(g, flip(a)), album / "grace-and-eileen.png")
    save(crop(a, 0.0, 0.0, 0.8, 0.8), album / "eileen-closer.jpg")
    save(no_face(), album / "coffee.jpg")
    rotated = Image.fromarray(np.rot90(g, k=1))  # stored sideways, EXIF says rotate back
    exif = Image.Exif()
    exif[0x0112] = 6
    target = album / "grace-sideways.jpg"
    rotated.save(target, exif=exif, quality=92)
    save(side_by_side(side_by_side(a, g), no_face()[:512, :400]), album / "holiday-wide.jpg")
    return refs
