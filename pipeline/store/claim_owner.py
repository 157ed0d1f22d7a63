"""Who holds a photo's claim, whether that process still lives, and its heartbeat.

A worker process claims photos as ``host/pid/start`` (:func:`this_process`; ``start`` is the
process's start time in centiseconds, so a recycled pid is not mistaken for the owner). While it
works on them, a :class:`Heartbeat` thread refreshes ``claimed_at`` every ``heartbeat_interval``
seconds. The sweeper returns a claim to the queue when its owner is gone: at once when the owner
ran on this host and its process no longer exists (:func:`owner_is_gone`), otherwise once the
heartbeat is older than ``stale_after`` (a dead host, a hung process).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from functools import lru_cache
from types import TracebackType

import psutil
from sqlmodel import Session

log = logging.getLogger(__name__)


def _process_start(pid: int) -> int | None:
    try:
        return int(psutil.Process(pid).create_time() * 100)
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None


@lru_cache(maxsize=4)
def _identity(pid: int) -> str:
    return f"{socket.gethostname()}/{pid}/{_process_start(pid) or 0}"


def this_process() -> str:
    """``host/pid/start`` of the calling process (cached per pid, so correct after a fork)."""
    return _identity(os.getpid())


def owner_is_gone(owner: str | None) -> bool:
    """True when ``owner`` ran on this host and that process no longer exists (or is a zombie,
    or its pid now belongs to another process). False when it lives, or runs elsewhere (its
    heartbeat decides), or the value is not an owner."""
    if not owner:
        return False
    host, _, rest = owner.partition("/")
    pid_text, _, start_text = rest.partition("/")
    if host != socket.gethostname() or not pid_text.isdigit() or not start_text.isdigit():
        return False
    pid = int(pid_text)
    try:
        if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
            return True
    except psutil.NoSuchProcess:
        return True
    except psutil.AccessDenied:
        return False
    return _process_start(pid) != int(start_text)


class Heartbeat:
    """Context manager: while open, a daemon thread sets ``claimed_at = now`` every
    ``interval`` seconds on the photos this process holds (``processing``, ``claimed_owner`` =
    :func:`this_process`). A failed beat (database busy, disk full) is logged at debug level and
    tried again at the next interval."""

    def __init__(self, db_url: str, interval: float) -> None:
        self.db_url, self.interval = db_url, interval
        self.owner = this_process()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="claim-heartbeat", daemon=True)

    def beat(self) -> int:
        """Refresh the claims now; returns how many photos this process holds."""
        from pipeline.store.db import get_engine
        from pipeline.store.states import refresh_claims

        with Session(get_engine(self.db_url)) as session:
            held = refresh_claims(session, self.owner)
            session.commit()
        return held

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.beat()
            except Exception as exc:  # the next beat tries again; the sweeper judges staleness
                log.debug("heartbeat failed: %s", exc)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join(self.interval + 5)
