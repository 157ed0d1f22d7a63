"""File names as text: any bytes a Linux file name may hold, stored without loss and shown escaped.

Python names a file whose bytes are not UTF-8 with "surrogate escapes" (``bad_\\udcff.jpg`` for
the bytes ``bad_\\xff.jpg``); such a string cannot be written to a database as text. The
``photos`` row keeps a readable, escaped ``path`` (``bad_\\xff.jpg``) plus the exact bytes in
``path_bytes``; :func:`pipeline.store.models.os_path` turns them back into the name to open.
"""

from __future__ import annotations

import os
from pathlib import Path


def path_text(path: str | Path) -> tuple[str, bytes | None]:
    """``(text, raw)``: the path itself and None when its bytes are UTF-8; otherwise the path
    with each undecodable byte written ``\\xNN`` and the raw bytes. Pure string work."""
    raw = os.fsencode(path)
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError:
        return raw.decode("utf-8", "backslashreplace"), raw


def shown(path: str | Path) -> str:
    """The path for messages and logs: printable, undecodable bytes as ``\\xNN``."""
    return path_text(path)[0]
