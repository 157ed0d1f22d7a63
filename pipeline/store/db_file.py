"""Is the SQLite file this process opened still the file at its path?

SQLite keeps writing into a file that was deleted (or replaced by another one) while it was
open: every later "done" would go into the void, and a new empty database would appear on the
next connect. Each process remembers the identity (``st_dev``, ``st_ino``) of the file it first
opened per path; :func:`check_database_file` compares it with what the path holds now. The
runner calls it at every tick, the sweeper at every pass, the ingestor before each write and the
workers before each batch.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from pipeline.errors import PipelineError

_lock = threading.Lock()
_opened: dict[str, tuple[int, int]] = {}


class DatabaseGoneError(PipelineError, RuntimeError):
    """The database file was deleted or replaced while the pipeline was using it."""


def sqlite_file(url: str) -> Path | None:
    """The file of a ``sqlite:///PATH`` URL; None for other databases and in-memory SQLite."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and url != "sqlite:///:memory:":
        return Path(url[len(prefix) :])
    return None


def remember_opened(path: Path) -> None:
    """Record the identity of ``path`` the first time this process opens it (connect hook)."""
    key = os.path.abspath(path)
    with _lock:
        if key in _opened:
            return
        try:
            st = os.stat(key)
        except OSError:
            return
        _opened[key] = (st.st_dev, st.st_ino)


def forget_opened() -> None:
    """Forget every remembered identity (with the engines: a new process or a new database)."""
    with _lock:
        _opened.clear()


def check_database_file(url: str) -> None:
    """Raise :class:`DatabaseGoneError` if ``url`` is a SQLite file this process opened and the
    path now holds no file or another file. Cheap (one ``stat``); no-op for other databases."""
    path = sqlite_file(url)
    if path is None:
        return
    key = os.path.abspath(path)
    with _lock:
        opened = _opened.get(key)
    if opened is None:
        return
    try:
        st = os.stat(key)
    except FileNotFoundError:
        raise DatabaseGoneError(
            f"the database file {key} was deleted while the pipeline was using it; stopped so that no result "
            "is written into the deleted file: restore it (from a backup or the trash) and start again"
        ) from None
    except OSError:
        return  # unreadable for a moment (e.g. a network share): the next check decides
    if (st.st_dev, st.st_ino) != opened:
        raise DatabaseGoneError(
            f"the database file {key} was replaced by another file while the pipeline was using it; stopped so "
            "that nothing is written into the old one: start the pipeline again to use the new file"
        )
