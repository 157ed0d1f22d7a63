"""Files only their owner may read: passwords, URLs with credentials."""

from __future__ import annotations

import os
from pathlib import Path


def write_private(path: Path, content: str) -> None:
    """Write ``content`` to ``path`` with mode 0600 (also when the file existed with a wider mode).

    Side effect: creates the parent folders. The file is never readable by others, not even briefly.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, content.encode())
    finally:
        os.close(fd)
