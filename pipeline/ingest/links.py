"""Which symbolic links the watcher follows, and telling the user about the others.

A link whose target lies inside the watched folders is never followed: the target is watched
under its own path already, and a folder link back up the tree (``sub/loop -> ..``) would find
every photo a second time. A link that leaves the watched folders (``x.jpg -> /etc/passwd``,
``nas -> /mnt/share``) is followed only with ``follow_symlinks`` on. Each link not followed is
reported once per watcher, as a warning naming the link, its target and why.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from pipeline.photos.path_text import shown

log = logging.getLogger("pipeline.ingest.watcher")


class LinkPolicy:
    """``allows(path)`` for a path that is a symlink: follow it or not (thread-safe)."""

    def __init__(self, roots: list[Path], follow_outside: bool) -> None:
        self.roots = [Path(os.path.realpath(r)) for r in roots]
        self.follow_outside = follow_outside
        self.refused: dict[str, str] = {}  # link -> why it was not followed (reported once)
        self._lock = threading.Lock()

    def allows(self, link: str) -> bool:
        """True to follow the symlink ``link``; otherwise report it (first time only) and return False."""
        target = os.path.realpath(link)
        if any(Path(target).is_relative_to(root) for root in self.roots):
            why = "its target is inside the watched folders and is watched there (a loop, or a second way in)"
        elif not self.follow_outside:
            why = "it leaves the watched folders (set follow_symlinks = true, PIPELINE_FOLLOW_SYMLINKS=true, to follow)"
        else:
            return True
        with self._lock:
            first = link not in self.refused
            self.refused[link] = why
        if first:
            log.warning("not following symlink %s -> %s: %s", shown(link), shown(target), why)
        return False

    def reachable(self, path: Path, root: Path) -> bool:
        """True when ``path`` (under ``root``) is reached without a symlink this policy refuses.

        Checks every component below ``root``, the last one included, with ``lstat`` (an event or
        a walk request may name a path under a linked folder, e.g. ``album/new/up/a.jpg`` where
        ``up -> ..``). A path not under ``root`` is not reachable.
        """
        try:
            parts = path.relative_to(root).parts
        except ValueError:
            return False
        current = root
        for part in parts:
            current = current / part
            if os.path.islink(current):
                return self.allows(str(current))
        return True
