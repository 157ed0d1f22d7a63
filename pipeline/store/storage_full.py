"""Telling "the disk (or quota) is full" apart from other database errors, and waiting it out.

SQLite reports a full disk as ``database or disk is full`` (``SQLITE_FULL``) or a disk I/O error
whose cause is ``ENOSPC``; PostgreSQL as SQLSTATE 53100 (``disk_full``); files as
``OSError(ENOSPC)`` or ``EDQUOT``. None of these is the photo's fault: the work is kept and
tried again with exponential backoff (:class:`StorageBackoff`) until there is room.
"""

from __future__ import annotations

import errno
import logging
import time

log = logging.getLogger(__name__)

_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
_FULL_TEXTS = ("database or disk is full", "no space left on device", "disk quota exceeded", "could not extend file")
BACKOFF_FIRST_S = 1.0
BACKOFF_MAX_S = 30.0


def is_storage_full(exc: BaseException) -> bool:
    """True if ``exc`` (or an exception it wraps) says the storage is full."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in _FULL_ERRNOS:
            return True
        if getattr(current, "sqlstate", None) == "53100":  # psycopg: disk_full
            return True
        text = str(current).lower()
        if any(marker in text for marker in _FULL_TEXTS):
            return True
        current = getattr(current, "orig", None) or current.__cause__ or current.__context__
    return False


class StorageBackoff:
    """Waits 1, 2, 4, ... up to 30 s between tries while the storage is full; says so in one
    log line per wait (warning for the first, info after)."""

    def __init__(self, what: str, first: float = BACKOFF_FIRST_S, cap: float = BACKOFF_MAX_S) -> None:
        self.what, self.first, self.cap = what, first, cap
        self.waits = 0

    @property
    def next_delay(self) -> float:
        return min(self.cap, self.first * 2**self.waits)

    def wait(self, exc: BaseException) -> None:
        """Log and sleep the next delay. Side effect: blocks the calling thread."""
        delay = self.next_delay
        level = logging.WARNING if self.waits == 0 else logging.INFO
        log.log(
            level, "storage full while %s (%s); trying again in %.0f s - free some space", self.what, _short(exc), delay
        )
        self.waits += 1
        time.sleep(delay)


def _short(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
