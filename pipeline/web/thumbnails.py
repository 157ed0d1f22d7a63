"""Thumbnails and face crops made on demand with Pillow, cached in ``<data_dir>/thumbnails``.

A cache file is keyed by the photo's content hash (the ``photos.sha256`` the pipeline recorded)
and what was asked for, so a photo edited on disk gets new thumbnails and nothing is shown that
the pipeline did not ingest: the file is read only when its bytes still hash to the row's value.
Only database rows are ever opened; the web app never maps a URL to a path.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import PipelineError

SIZES = (160, 320, 1024)
"""Longest side in pixels of the sizes the app serves (grid, person card, photo page)."""


class ThumbnailError(PipelineError, LookupError):
    """The picture cannot be shown (file gone, changed since it was tagged, or not decodable)."""


@dataclass(frozen=True)
class Picture:
    """What a thumbnail is made from: a file, the content hash it must have (hex, of the kind
    ``hash_kind``: ``blake3`` or ``sha256``, as the row says) and an optional face box."""

    path: str
    sha256: str
    box: tuple[float, float, float, float] | None = None
    hash_kind: str = "sha256"


def cache_file(cache_dir: Path, picture: Picture, size: int) -> Path:
    """``<cache_dir>/ab/<sha256>-<size>[-face-<box>].jpg`` (no part of it comes from a URL)."""
    variant = str(size)
    if picture.box is not None:
        variant += "-face-" + "-".join(f"{v:.4f}" for v in picture.box)
    return cache_dir / picture.sha256[:2] / f"{picture.sha256}-{variant}.jpg"


def _digest(data: bytes, kind: str) -> str:
    """Hex digest of ``data`` in the row's hash kind (the ingestor's :func:`~pipeline.photos.files.content_hash`)."""
    if kind == "blake3":
        from blake3 import blake3

        return str(blake3(data).hexdigest())
    return hashlib.sha256(data).hexdigest()


def _read_verified(picture: Picture) -> bytes:
    try:
        if not os.path.isfile(picture.path):
            raise ThumbnailError("the photo's file is gone (moved or deleted); the watcher will update it")
        data = Path(picture.path).read_bytes()
    except OSError as exc:
        raise ThumbnailError(f"the photo's file cannot be read: {exc.strerror}") from None
    if _digest(data, picture.hash_kind) != picture.sha256:
        raise ThumbnailError("the photo's file changed since it was tagged; it is shown again once re-tagged")
    return data


def render(picture: Picture, size: int, max_pixels: int) -> bytes:
    """JPEG bytes: the EXIF-rotated picture (or the face box with a margin) fitted in ``size`` x ``size``."""
    import io

    from PIL import Image, ImageOps

    data = _read_verified(picture)
    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.width * im.height > max_pixels:
                raise ThumbnailError(f"image too large ({im.width}x{im.height} pixels)")
            if picture.box is None:
                im.draft("RGB", (size * 2, size * 2))  # JPEG: decode at a reduced scale, much faster
            rgb = ImageOps.exif_transpose(im).convert("RGB")
    except ThumbnailError:
        raise
    except Exception as exc:  # Pillow raises many types for a bad file
        raise ThumbnailError(f"the photo cannot be decoded: {exc}") from None
    if picture.box is not None:
        x, y, w, h = picture.box
        margin = 0.25
        left, top = (x - w * margin) * rgb.width, (y - h * margin) * rgb.height
        right, bottom = (x + w * (1 + margin)) * rgb.width, (y + h * (1 + margin)) * rgb.height
        rgb = rgb.crop((max(0, int(left)), max(0, int(top)), min(rgb.width, int(right)), min(rgb.height, int(bottom))))
    rgb.thumbnail((size, size))
    out = io.BytesIO()
    rgb.save(out, "JPEG", quality=85)
    return out.getvalue()


def thumbnail(cache_dir: Path, picture: Picture, size: int, max_pixels: int) -> Path:
    """The cached thumbnail file for ``picture`` at ``size`` (made now when missing; atomic write)."""
    if size not in SIZES:
        raise ThumbnailError(f"no thumbnail size {size}; sizes: {', '.join(map(str, SIZES))}")
    target = cache_file(cache_dir, picture, size)
    if target.is_file():
        return target
    jpeg = render(picture, size, max_pixels)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    tmp.write_bytes(jpeg)
    tmp.replace(target)
    return target
