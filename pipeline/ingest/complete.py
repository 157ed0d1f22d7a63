"""Does an image file end where its own format says it ends? (a cheap "writer finished" check)

The watcher uses this to fast-track a file whose writer closed it: a JPEG that ends with its
end-of-image marker, a PNG that ends with ``IEND``, a WebP or HEIF/AVIF file whose container
sizes add up to the file size is complete. A file cut short by a writer that closes and reopens
it per chunk fails the check and waits the full settle time instead. Formats without an end
marker (TIFF) and anything unrecognised answer False, so the check only ever makes things
faster, never less safe. Reads at most a few hundred bytes (a few dozen seeks for HEIF).
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import BinaryIO

_JPEG_SOI = b"\xff\xd8"
_JPEG_EOI = b"\xff\xd9"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_TRAILER = b"\x00\x00\x00\x00IEND"  # length 0, type IEND, then a 4-byte CRC
_JPEG_TAIL_SLACK = 64  # bytes after EOI some encoders pad with (zeros or 0xFF fill)
_MAX_BOXES = 4096  # top-level ISO-BMFF boxes walked before giving up


def looks_complete(path: Path | str) -> bool:
    """True when ``path`` is a JPEG, PNG, WebP or HEIF/AVIF file whose end matches its format.

    False for a truncated file, another format, an unreadable or vanished file. Side effects:
    opens and reads the file (head and tail only).
    """
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            head = handle.read(16)
            if head.startswith(_JPEG_SOI):
                return _jpeg_complete(handle, size)
            if head.startswith(_PNG_SIGNATURE):
                return _tail(handle, size, 12)[:8] == _PNG_TRAILER
            if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
                return struct.unpack("<I", head[4:8])[0] + 8 == size
            if head[4:8] == b"ftyp":
                return _bmff_complete(handle, size)
    except OSError:
        return False
    return False


def _tail(handle: BinaryIO, size: int, n: int) -> bytes:
    handle.seek(max(0, size - n))
    return handle.read(n)


def _jpeg_complete(handle: BinaryIO, size: int) -> bool:
    """The last non-padding bytes are the EOI marker FF D9."""
    tail = _tail(handle, size, _JPEG_TAIL_SLACK + 2).rstrip(b"\x00\xff")  # padding, fill bytes
    return size > 4 and tail.endswith(_JPEG_EOI)


def _bmff_complete(handle: BinaryIO, size: int) -> bool:
    """Top-level ISO-BMFF boxes (ftyp, meta, mdat, ...) tile the file exactly."""
    offset = 0
    for _ in range(_MAX_BOXES):
        if offset == size:
            return True
        handle.seek(offset)
        header = handle.read(16)
        if len(header) < 8:
            return False
        box_size = struct.unpack(">I", header[:4])[0]
        if box_size == 1:  # 64-bit size follows the type
            if len(header) < 16:
                return False
            box_size = struct.unpack(">Q", header[8:16])[0]
        elif box_size == 0:  # "to the end of the file": nothing to check against
            return False
        if box_size < 8:
            return False
        offset += box_size
        if offset > size:
            return False
    return False
