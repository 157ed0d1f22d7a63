"""One line on the terminal when the data directory's file system fills up, one when it has room
again. The work itself waits on its own (the ingestor defers new files, workers back off; see
:mod:`pipeline.store.storage_full`); this only tells the user why nothing moves."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

MIN_FREE_BYTES = 1 << 20
"""Below this much free space (for this user) the file system counts as full."""


def free_bytes(path: Path) -> int | None:
    """Bytes this user may still write on ``path``'s file system (root may use the reserve);
    None if it cannot be asked."""
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    blocks = st.f_bfree if os.geteuid() == 0 else st.f_bavail
    return blocks * st.f_frsize


class StorageNotice:
    """Call :meth:`poll` often; it looks at most every ``every`` seconds and reports changes."""

    def __init__(self, path: Path, report: Callable[[str], None], every: float = 2.0) -> None:
        self.path, self.report, self.every = path, report, every
        self.full = False
        self._next = 0.0

    def poll(self) -> bool:
        """Returns whether the file system is full now."""
        now = time.monotonic()
        if now < self._next:
            return self.full
        self._next = now + self.every
        free = free_bytes(self.path)
        full = free is not None and free < MIN_FREE_BYTES
        if full and not self.full:
            self.report(
                f"storage full: no space left for {self.path}; new photos and results wait and are "
                "retried automatically once there is room - free some space"
            )
        elif self.full and not full:
            self.report("storage has room again: the waiting photos continue")
        self.full = full
        return full
