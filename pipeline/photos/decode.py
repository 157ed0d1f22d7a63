"""Photo decoding: safe, full decoding with EXIF orientation and capture time, HEIC/HEIF, and a
decompression-bomb guard.

Nothing happens at import time. The HEIF/HEIC opener of pillow-heif is registered into Pillow's
plugin registry the first time a photo is opened (:func:`register_heif`); that registration is
process-wide by design and is the only global Pillow state this module touches.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from pipeline.errors import PipelineError

logger = logging.getLogger(__name__)

_HEIF_SUFFIXES = frozenset({".heic", ".heif"})
_heif_lock = threading.Lock()
_heif_state: bool | None = None  # None: not tried yet; True: registered; False: unavailable


class PhotoError(PipelineError):
    """A file that cannot be used as a photo. ``reason`` is a short readable sentence.

    ``str(err)`` is ``"<path>: <reason>"`` when the path is known, else the reason alone.
    """

    def __init__(self, reason: str, path: Path | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.path = path

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}" if self.path is not None else self.reason


@dataclass
class DecodedPhoto:
    """A decoded photo, ready for detection and captioning.

    ``image``: RGB, EXIF orientation already applied, detached from the file.
    ``width``/``height``: pixels of ``image`` (i.e. after rotation).
    ``taken_at``: capture time, always timezone-aware, or None. From EXIF DateTimeOriginal, then
    DateTimeDigitized, then DateTime (with the matching SubSec tag). When the EXIF has the
    matching OffsetTime* tag the value carries that offset (a true instant) and
    ``taken_at_tz_known`` is True; otherwise the camera's wall-clock reading is labelled UTC
    (the real zone is unknown; the digits are kept exactly, so a ``timestamptz`` column stores the
    same value on every host) and ``taken_at_tz_known`` is False.
    ``format``: Pillow's format name (``JPEG``, ``PNG``, ``WEBP``, ``TIFF``, ``HEIF``...).
    """

    image: Image.Image
    width: int
    height: int
    taken_at: datetime | None
    format: str = ""
    taken_at_tz_known: bool = False


def register_heif() -> bool:
    """Register pillow-heif's HEIC/HEIF opener with Pillow, once per process (thread-safe).

    Returns False (and logs once) when pillow-heif is not installed. Side effect: adds the
    ``HEIF`` format to Pillow's global plugin registry.
    """
    global _heif_state
    if _heif_state is not None:
        return _heif_state
    with _heif_lock:
        if _heif_state is None:
            try:
                import pillow_heif

                pillow_heif.register_heif_opener()
                _heif_state = True
            except ImportError:
                logger.warning("pillow-heif is not installed: HEIC/HEIF photos cannot be decoded")
                _heif_state = False
    return _heif_state


def decode_photo(path: Path, max_pixels: int) -> DecodedPhoto:
    """Decode a photo file fully into an RGB image with EXIF orientation applied.

    Reads JPEG, PNG, WebP, TIFF and HEIC/HEIF. ``max_pixels`` (width*height) is checked on the
    header, before any pixel is decoded. Every pixel is then loaded, so truncated files fail here.
    Palette, alpha (composited on white), 16-bit, CMYK and grayscale images become 8-bit RGB.

    Raises :class:`PhotoError` for every failure (missing/unreadable/empty file, unknown format,
    corrupt or truncated data, too many pixels); never another exception type.
    Note: Pillow's own bomb check still applies inside ``Image.open``: it warns above
    ``PIL.Image.MAX_IMAGE_PIXELS`` (~89 M) and refuses above twice that (~179 M); such a refusal
    is reported as the same "image too large" PhotoError.
    """
    with _open(path, max_pixels) as im:
        try:
            im.load()
            taken_at, tz_known = _taken_at(im)
            fmt = im.format or ""
            rgb = _to_rgb(_apply_orientation(im, path))
        except PhotoError as exc:
            exc.path = exc.path or path
            raise
        except Exception as exc:
            raise _corrupt(exc, path) from exc
    return DecodedPhoto(rgb, rgb.width, rgb.height, taken_at, fmt, tz_known)


def probe_photo(path: Path, max_pixels: int) -> tuple[int, int, datetime | None]:
    """Header-only read: ``(width, height, taken_at)``, width/height after EXIF rotation.

    Cheap (no pixel decoding), so a truncated file can pass here; :func:`decode_photo` is the real
    gate. ``taken_at`` as in :class:`DecodedPhoto`. Raises :class:`PhotoError` like decode_photo.
    """
    with _open(path, max_pixels) as im:
        try:
            width, height = im.size
            if im.format == "PNG" and "exif" not in im.info:
                return width, height, None  # PNG's getexif() would decode every pixel
            if im.getexif().get(ExifTags.Base.Orientation, 1) in (5, 6, 7, 8):
                width, height = height, width
            taken_at, _ = _taken_at(im)
        except Exception as exc:
            raise _corrupt(exc, path) from exc
    return width, height, taken_at


def _open(path: Path, max_pixels: int) -> Image.Image:
    """Open ``path`` lazily (header only) and apply the size checks; the caller closes it."""
    try:
        size = path.stat().st_size
    except FileNotFoundError as exc:
        raise PhotoError("file not found", path) from exc
    except OSError as exc:
        raise PhotoError(f"cannot read file: {exc.strerror or exc}", path) from exc
    if size == 0:
        raise PhotoError("empty file (0 bytes)", path)
    heif_ok = register_heif()  # also lets a mis-named HEIC (e.g. ".jpg") open
    if path.suffix.lower() in _HEIF_SUFFIXES and not heif_ok:
        raise PhotoError("HEIC/HEIF support unavailable (install pillow-heif)", path)
    try:
        im = Image.open(path)
    except UnidentifiedImageError as exc:
        raise PhotoError("not an image (unrecognised format)", path) from exc
    except Image.DecompressionBombError as exc:
        pixels = re.search(r"\((\d+) pixels\)", str(exc))
        count = pixels.group(1) if pixels else "more than Pillow's hard limit of"
        raise PhotoError(
            f"image too large: {count} pixels > limit {min(max_pixels, _pil_hard_limit())} (decompression-bomb guard)",
            path,
        ) from exc
    except OSError as exc:
        if exc.errno is None:  # a plugin's "broken data" error, not an I/O error
            raise _corrupt(exc, path) from exc
        raise PhotoError(f"cannot read file: {exc.strerror or exc}", path) from exc
    except Exception as exc:
        raise _corrupt(exc, path) from exc
    width, height = im.size
    if width <= 0 or height <= 0:
        im.close()
        raise PhotoError(f"truncated or corrupt image: invalid size {width}x{height}", path)
    if width * height > max_pixels:
        im.close()
        raise PhotoError(
            f"image too large: {width * height} pixels > limit {max_pixels} (decompression-bomb guard)",
            path,
        )
    return im


def _apply_orientation(im: Image.Image, path: Path) -> Image.Image:
    """A detached copy of ``im`` rotated/flipped per its EXIF Orientation tag.

    A malformed EXIF block must not cost the photo: the image is then used as stored (logged).
    """
    try:
        return ImageOps.exif_transpose(im)
    except Exception as exc:
        logger.warning("%s: ignoring unusable EXIF orientation (%s)", path, exc)
        return im.copy()


def _pil_hard_limit() -> int:
    limit = Image.MAX_IMAGE_PIXELS
    return 2 * limit if limit else 2**63


def _corrupt(exc: BaseException, path: Path) -> PhotoError:
    if isinstance(exc, MemoryError):
        return PhotoError("out of memory while decoding", path)
    detail = str(exc) or type(exc).__name__
    return PhotoError(f"truncated or corrupt image: {detail}", path)


def _to_rgb(im: Image.Image) -> Image.Image:
    """Any Pillow mode -> 8-bit RGB. Alpha is composited on white; 16/32-bit gray is rescaled."""
    if im.mode == "RGB":
        return im
    if im.mode in ("I", "F") or im.mode.startswith("I;16"):
        return Image.fromarray(_gray_to_u8(np.asarray(im))).convert("RGB")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or im.has_transparency_data:
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    try:
        return im.convert("RGB")
    except ValueError as exc:
        raise PhotoError(f"unsupported colour mode {im.mode}") from exc


def _gray_to_u8(values: np.ndarray) -> np.ndarray:
    """Scale one-channel 16-bit, 32-bit or float pixels to uint8.

    16-bit data (and integer data within 0..65535) keeps its meaning: ``v >> 8``. Anything else
    (float, negative or wider integers) is stretched from its min..max to 0..255.
    """
    if values.size == 0:
        return values.astype(np.uint8)
    if values.dtype.kind in "ui":
        low, high = int(values.min()), int(values.max())
        if low >= 0 and high <= 0xFF and values.dtype.itemsize > 2:
            return values.astype(np.uint8)  # mode "I" holding 8-bit values
        if low >= 0 and high <= 0xFFFF:
            return (values.astype(np.uint32) >> 8).astype(np.uint8)
    as_float = values.astype(np.float64)
    low_f, high_f = float(as_float.min()), float(as_float.max())
    if high_f <= low_f:
        return np.zeros(values.shape, np.uint8)
    return ((as_float - low_f) * (255.0 / (high_f - low_f))).round().astype(np.uint8)


# --------------------------------------------------------------------------------------------
# EXIF dates

_DATE_TAGS = (  # (date, subsec, offset) tag ids, most specific first
    (ExifTags.Base.DateTimeOriginal, ExifTags.Base.SubsecTimeOriginal, ExifTags.Base.OffsetTimeOriginal),
    (ExifTags.Base.DateTimeDigitized, ExifTags.Base.SubsecTimeDigitized, ExifTags.Base.OffsetTimeDigitized),
    (ExifTags.Base.DateTime, ExifTags.Base.SubsecTime, ExifTags.Base.OffsetTime),
)
_DATE_RE = re.compile(r"(\d{4})[:\-](\d{2})[:\-](\d{2})[ T](\d{2}):(\d{2}):(\d{2})")
_OFFSET_RE = re.compile(r"([+-])(\d{2}):?(\d{2})")


def _taken_at(im: Image.Image) -> tuple[datetime | None, bool]:
    """``(taken_at, tz_known)`` from the EXIF of an opened image; ``(None, False)`` if absent/bad."""
    try:
        exif = im.getexif()
        tags: dict[int, object] = dict(exif)
        tags.update(exif.get_ifd(ExifTags.IFD.Exif))
    except Exception as exc:
        logger.debug("unreadable EXIF in %s: %s", getattr(im, "filename", "?"), exc)
        return None, False
    for date_tag, subsec_tag, offset_tag in _DATE_TAGS:
        parsed = _parse_exif_datetime(tags.get(date_tag), tags.get(subsec_tag), tags.get(offset_tag))
        if parsed is not None:
            return parsed
    return None, False


def _parse_exif_datetime(value: object, subsec: object, offset: object) -> tuple[datetime, bool] | None:
    text = _exif_text(value)
    match = _DATE_RE.match(text) if text else None
    if match is None:
        return None
    try:
        year, month, day, hour, minute, second = (int(g) for g in match.groups())
        when = datetime(year, month, day, hour, minute, second)
    except ValueError:  # "0000:00:00 00:00:00" and friends
        return None
    digits = re.sub(r"\D", "", _exif_text(subsec))[:6]
    if digits:
        when = when.replace(microsecond=int(digits.ljust(6, "0")))
    off = _OFFSET_RE.fullmatch(_exif_text(offset))
    if off is not None:
        sign = -1 if off.group(1) == "-" else 1
        delta = timedelta(hours=int(off.group(2)), minutes=int(off.group(3)))
        if delta < timedelta(hours=24):
            return when.replace(tzinfo=timezone(sign * delta)), True
    return when.replace(tzinfo=UTC), False


def _exif_text(value: object) -> str:
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    return value.strip("\x00 ").strip() if isinstance(value, str) else ""
