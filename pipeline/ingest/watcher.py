"""Watch photo folders and report files once they are complete, and files that went away.

watchdog events and periodic full rescans feed one *stabilizer*; callbacks run on one
*dispatcher* thread. The threads of a started :class:`FolderWatcher`:

- watchdog's observer and emitters (inotify, or polling): the handler only enqueues
  ``(kind, path, dest, monotonic time)``; no stat, hash or callback runs there;
- ``stabilizer``: owns all state; re-stats candidate files until size and mtime_ns hold still;
- ``walker``: the initial and periodic full rescans, and walks of folders that appear;
- ``dispatcher``: calls ``on_ready`` / ``on_deleted`` / ``on_rescan``, one at a time.

A file is *ready* when two stats at least ``settle_seconds`` apart, both taken after its last
event, agree on (size, mtime_ns). Events are coalesced: a file being written is stat'ed about
once per ``settle_seconds``, so it is reported between 1x and 2x ``settle_seconds`` after its last
write. A writer that pauses for longer than ``settle_seconds`` can be reported early; its next
write makes the file pending again and it is reported once more (with the new size).

Fast track: when the writer closed the file (inotify close-after-write, ``on_closed``) or it was
renamed into place (the sync tools' atomic pattern), and the file ends where its format says it
ends (:func:`pipeline.ingest.complete.looks_complete`: JPEG end marker, PNG ``IEND``, WebP/HEIF
container sizes), one confirming stat ``confirm_seconds`` later is enough. A writer that closes
and reopens the file per chunk leaves a truncated file at each close, which fails the format
check and waits the full ``settle_seconds``.
"""

from __future__ import annotations

import errno
import heapq
import itertools
import logging
import os
import queue
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileAttribEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserverVFS

from pipeline.errors import PipelineError
from pipeline.ingest.complete import looks_complete
from pipeline.ingest.links import LinkPolicy
from pipeline.photos.files import IMAGE_SUFFIXES, is_candidate, is_ignored_name

logger = logging.getLogger(__name__)

_Sig = tuple[int, int]  # (size in bytes, st_mtime_ns) of a file

_EVENT_KINDS: dict[type[FileSystemEvent], str] = {
    FileCreatedEvent: "changed",
    FileModifiedEvent: "changed",
    FileAttribEvent: "attrib",
    FileClosedEvent: "closed",
    FileDeletedEvent: "deleted",
    FileMovedEvent: "moved",
    DirCreatedEvent: "dir_created",
    DirDeletedEvent: "dir_deleted",
    DirMovedEvent: "dir_moved",
}
_INOTIFY_LIMIT_ERRNOS = (errno.ENOSPC, errno.EMFILE)
_STOP = object()  # queue sentinel
_DRAIN_MAX = 1000  # inbox items handled between two rounds of due checks
READY_BATCH = 256
"""Most ready files handed to ``on_ready_many`` at once: a batch's fixed cost (a session, three
statements, a commit) spread over 256 small files cost a third less CPU per file than over 64."""
READY_BATCH_BYTES = 256 << 20
"""Most bytes in one batch (at least one file): about 32 photos of 8 MB, hashed in 0.1-0.3 s here,
so the first ids of a first import still leave early."""


def batch_full(files: int, size: int) -> bool:
    """Whether a batch of ``files`` ready files holding ``size`` bytes takes no more
    (:data:`READY_BATCH`, :data:`READY_BATCH_BYTES`)."""
    return files >= READY_BATCH or size >= READY_BATCH_BYTES


@dataclass
class _Item:
    """One unit of work for the stabilizer."""

    kind: str
    path: Path
    dest: Path | None = None
    t: float = 0.0  # monotonic seconds (event time, or walk start for "rescan_done")
    sig: _Sig | None = None
    seen: frozenset[Path] = frozenset()


@dataclass
class _Pending:
    """A candidate file waiting to hold still."""

    last_event: float  # monotonic time of its newest event (-inf when found by a walk)
    due: float = 0.0  # next stat, monotonic
    sig: _Sig | None = None  # previous stat
    sampled_at: float = float("-inf")
    closed: bool = False  # the writer closed it (or it was renamed into place) after its last write


@dataclass
class _Known:
    """A file the receiver may know: reported by us, or seen by a walk."""

    since: float  # monotonic
    reported: _Sig | None = None  # what on_ready last announced


class _Handler(FileSystemEventHandler):
    """Runs on watchdog's observer thread: classify and enqueue, nothing else."""

    def __init__(self, inbox: queue.Queue[Any]) -> None:
        self.inbox = inbox

    def on_any_event(self, event: FileSystemEvent) -> None:
        kind = _EVENT_KINDS.get(type(event))
        if kind is None:
            return
        dest = Path(os.fsdecode(event.dest_path)) if event.dest_path else None
        self.inbox.put(_Item(kind, Path(os.fsdecode(event.src_path)), dest, time.monotonic()))


class FolderWatcher:
    """Report complete photo files under ``folders`` (recursively) and files that disappear.

    ``on_ready(path)``: a candidate file (:func:`pipeline.photos.files.is_candidate`) held still; it is
    not reported again by this instance while its (size, mtime_ns) stay the same. Zero-byte files
    are reported too: the receiver decides they are broken.
    ``on_deleted(path)``: a file this instance reported, or saw in a walk, was deleted or moved
    away (a rename inside the tree gives ``on_deleted(old)`` then, once stable, ``on_ready(new)``).
    ``on_rescan(folder, seen)``: after each *complete* full walk of ``folder``: every candidate
    path seen. It is a snapshot taken during the walk: use it only to mark photos *not* in it as
    missing. It is not called when the folder is missing or a directory could not be listed
    (an unmounted share must not look like an empty library).

    Callbacks run on one dispatcher thread, one at a time; an exception is logged and ignored.
    Paths are absolute, under the resolved folders. A watcher can be started once.
    """

    def __init__(
        self,
        folders: list[Path],
        *,
        on_ready: Callable[[Path], object],
        on_deleted: Callable[[Path], object],
        on_rescan: Callable[[Path, set[Path]], object] | None = None,
        on_ready_many: Callable[[list[Path]], object] | None = None,
        polling: bool = False,
        poll_interval: float = 5.0,
        settle_seconds: float = 1.0,
        confirm_seconds: float = 0.2,
        rescan_interval: float = 300.0,
        follow_symlinks: bool = False,
    ) -> None:
        """Configure only; :meth:`start` does the work. Times are in seconds.

        ``on_ready_many(paths)``: when given, ready files already waiting for the dispatcher (up
        to :data:`READY_BATCH` files or :data:`READY_BATCH_BYTES`, in order) are handed on in one
        call instead of one ``on_ready`` each: a first import registers them in one transaction.

        ``follow_symlinks``: follow links that leave the watched folders (links inside them never
        are; :mod:`pipeline.ingest.links`). Each link not followed is logged once as a warning.

        ``polling``: use watchdog's polling observer, a snapshot every ``poll_interval`` (network
        shares, Docker Desktop); otherwise the native observer, falling back to polling when the
        inotify limits are exhausted. Neither observer follows symlinks; rescans do.
        ``confirm_seconds``: the quiet time that suffices for a closed (or renamed-in) file whose
        format looks complete (capped at ``settle_seconds``); see the module docstring.
        ``rescan_interval``: full walk period (0 = only at start). Nested folders are merged into
        their outermost folder.
        """
        if not folders:
            raise ValueError("FolderWatcher needs at least one folder to watch")
        if settle_seconds < 0 or confirm_seconds < 0 or poll_interval <= 0 or rescan_interval < 0:
            raise ValueError(
                "settle_seconds, confirm_seconds and rescan_interval must be >= 0 and poll_interval > 0 "
                f"(got {settle_seconds}, {confirm_seconds}, {rescan_interval}, {poll_interval})"
            )
        resolved = sorted({Path(f).expanduser().resolve() for f in folders}, key=lambda p: len(p.parts))
        self.folders: list[Path] = []
        for folder in resolved:
            if any(folder.is_relative_to(outer) for outer in self.folders):
                logger.info("%s is inside another watched folder; watching it once", folder)
            else:
                self.folders.append(folder)
        self._on_ready = on_ready
        self._on_deleted = on_deleted
        self._on_rescan = on_rescan
        self._on_ready_many = on_ready_many
        self._polling = polling
        self._poll_interval = poll_interval
        self._settle = settle_seconds
        self._confirm = min(confirm_seconds, settle_seconds)
        self._rescan_interval = rescan_interval
        self.links = LinkPolicy(self.folders, follow_symlinks)

        self._inbox: queue.Queue[Any] = queue.Queue()
        self._calls: queue.Queue[Any] = queue.Queue()
        self._walk_requests: queue.Queue[Path | None] = queue.Queue()
        self._stopping = threading.Event()
        self._life_lock = threading.Lock()
        self._walk_lock = threading.Lock()
        self._started = False
        self._stopped = False
        self._threads: list[threading.Thread] = []
        self._observer: BaseObserver | None = None
        self.observer_kind: str | None = None
        """"native" or "polling" once started (polling also after an inotify-limit fallback)."""

        self._first_walk_done = threading.Event()
        self._calling = False

        # Owned by the stabilizer thread.
        self._pending: dict[Path, _Pending] = {}
        self._heap: list[tuple[float, int, Path]] = []
        self._seq = itertools.count()
        self._known: dict[Path, _Known] = {}

    # -- life cycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Start the dispatcher, stabilizer, observer and walker threads (the walker begins with
        a full rescan). Raises ``FileNotFoundError`` for a missing folder, ``RuntimeError`` when
        called twice."""
        with self._life_lock:
            if self._started:
                raise RuntimeError("FolderWatcher.start() was already called; create a new watcher")
            for folder in self.folders:
                if not folder.is_dir():
                    raise FileNotFoundError(f"watched folder {folder} does not exist or is not a directory")
            self._started = True
        try:
            self._spawn("dispatcher", self._run_dispatcher)
            self._spawn("stabilizer", self._run_stabilizer)
            self._observer = self._start_observer()
            self._spawn("walker", self._run_walker)
        except BaseException:
            self.stop()
            raise
        logger.info("watching %s (%s observer)", ", ".join(map(str, self.folders)), self.observer_kind)

    def stop(self) -> None:
        """Stop and join every thread; idempotent. Callbacks queued but not yet called are
        dropped (the next start's rescan finds those files again). Safe to call from a callback
        (that thread is then not joined; it ends when the callback returns)."""
        with self._life_lock:
            if not self._started or self._stopped:
                return
            self._stopped = True
        self._stopping.set()
        if self._observer is not None:
            _dispose(self._observer)
        self._walk_requests.put(None)
        self._inbox.put(_STOP)
        self._calls.put(_STOP)
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join()
        logger.info("stopped watching %s", ", ".join(map(str, self.folders)))

    def __enter__(self) -> FolderWatcher:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def is_idle(self) -> bool:
        """True once the first full walk finished and no file is settling or being reported.

        A point-in-time reading for callers that want to stop when all work is done
        (``pipeline run --until-idle``); events arriving later make it False again.
        """
        return (
            self._first_walk_done.is_set()
            and not self._pending
            and self._inbox.empty()
            and self._calls.empty()
            and not self._calling
        )

    def rescan(self) -> None:
        """Walk every folder now, in the calling thread (blocking; one walk at a time).

        Every candidate found goes through the stabilizer (unchanged, already reported files are
        skipped there); after each complete walk ``on_rescan(folder, seen)`` is queued.
        """
        if not self._started or self._stopped:
            raise RuntimeError("FolderWatcher.rescan() needs a started, not stopped, watcher")
        self._rescan_all()

    def _rescan_all(self) -> None:
        with self._walk_lock:
            for folder in self.folders:
                began = time.monotonic()
                seen: set[Path] = set()

                def found(path: Path, sig: _Sig, seen: set[Path] = seen) -> None:
                    seen.add(path)
                    self._inbox.put(_Item("seen", path, sig=sig))

                complete = _walk(folder, found, self._stopping.is_set, self.links)
                if self._stopping.is_set():
                    return
                if complete:
                    self._inbox.put(_Item("rescan_done", folder, t=began, seen=frozenset(seen)))
                    logger.info("rescan of %s: %d photos (%.1f s)", folder, len(seen), time.monotonic() - began)
                else:
                    logger.warning("rescan of %s incomplete; not reporting vanished photos this time", folder)

    # -- threads ---------------------------------------------------------------------------

    def _spawn(self, role: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=f"FolderWatcher-{role}", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _start_observer(self) -> BaseObserver:
        if not self._polling:
            try:
                observer = self._launch(Observer())
                self.observer_kind = "native"
                return observer
            except OSError as exc:
                if exc.errno not in _INOTIFY_LIMIT_ERRNOS:
                    raise
                logger.error(
                    "inotify limit reached (%s); falling back to polling every %.1f s. Raise the host's "
                    "limits, e.g. `sysctl -w fs.inotify.max_user_watches=524288 "
                    "fs.inotify.max_user_instances=1024` (persist in /etc/sysctl.d/; not per container)",
                    exc,
                    self._poll_interval,
                )
        # lstat: like inotify, polling does not follow symlinks. watchdog's PollingObserver stats
        # with os.stat and recurses through a symlink loop until ELOOP, failing every snapshot.
        observer = self._launch(PollingObserverVFS(os.lstat, os.scandir, polling_interval=self._poll_interval))
        self.observer_kind = "polling"
        return observer

    def _launch(self, observer: BaseObserver) -> BaseObserver:
        try:
            handler = _Handler(self._inbox)
            for folder in self.folders:
                observer.schedule(handler, str(folder), recursive=True, event_filter=list(_EVENT_KINDS))
            observer.start()
        except BaseException:
            _dispose(observer)
            raise
        return observer

    def _run_dispatcher(self) -> None:
        carried: Any = None  # a call taken from the queue while gathering ready files
        while True:
            item, carried = (carried, None) if carried is not None else (self._calls.get(), None)
            if item is _STOP:
                return
            if self._stopping.is_set():
                continue
            callback, args, size = item
            if callback is self._on_ready and self._on_ready_many is not None:
                paths, carried = self._gather_ready(args[0], size)
                if len(paths) > 1:
                    callback, args = self._on_ready_many, (paths,)
            self._calling = True
            try:
                callback(*args)
            except PipelineError as exc:  # a problem the user acts on: one line, no traceback
                logger.warning("%s: %s", args[0], exc)
            except Exception:
                logger.exception("%s(%s) raised; the watcher goes on", getattr(callback, "__name__", callback), args[0])
            finally:
                self._calling = False

    def _gather_ready(self, first: Path, size: int) -> tuple[list[Path], Any]:
        """``first`` (``size`` bytes) and the ready files queued right behind it, until the
        batch is full (:func:`batch_full`); returns them and the first other call it took from
        the queue (or None)."""
        paths = [first]
        while not batch_full(len(paths), size):
            try:
                item = self._calls.get_nowait()
            except queue.Empty:
                return paths, None
            if item is _STOP or item[0] is not self._on_ready:
                return paths, item
            paths.append(item[1][0])
            size += item[2]
        return paths, None

    def _run_walker(self) -> None:
        next_full: float | None = time.monotonic()
        while not self._stopping.is_set():
            now = time.monotonic()
            if next_full is not None and now >= next_full:
                try:
                    self._rescan_all()
                except Exception:
                    logger.exception("full rescan failed; retrying at the next interval")
                self._first_walk_done.set()
                next_full = time.monotonic() + self._rescan_interval if self._rescan_interval > 0 else None
                continue
            try:
                request = self._walk_requests.get(timeout=None if next_full is None else next_full - now)
            except queue.Empty:
                continue
            if request is None:
                return
            try:
                _walk(request, lambda p, s: self._inbox.put(_Item("seen", p, sig=s)), self._stopping.is_set, self.links)
            except Exception:
                logger.exception("walking %s failed", request)

    def _run_stabilizer(self) -> None:
        carried: Any = None  # an item left over when a round hit _DRAIN_MAX
        while True:
            item, carried = carried, None
            if item is None:
                timeout = max(0.0, self._heap[0][0] - time.monotonic()) if self._heap else None
                try:
                    item = self._inbox.get(timeout=timeout)
                except queue.Empty:
                    item = None
            for _ in range(_DRAIN_MAX):  # bounded, so a flood of events cannot starve the checks
                if item is None:
                    break
                if item is _STOP:
                    return
                try:
                    self._handle(item)
                except Exception:
                    logger.exception("watcher could not handle %s; continuing", item)
                try:
                    item = self._inbox.get_nowait()
                except queue.Empty:
                    item = None
            else:
                carried = item
            self._check_due(time.monotonic())

    # -- stabilizer (only ever runs on the stabilizer thread) -------------------------------

    def _handle(self, item: _Item) -> None:
        kind = item.kind
        if kind in ("changed", "closed", "attrib"):
            self._touch(item.path, item.t, kind)
        elif kind == "deleted":
            self._gone(item.path)
        elif kind == "moved":
            self._gone(item.path)
            if item.dest is not None:
                self._touch(item.dest, item.t, "closed")  # renamed into place: written elsewhere
        elif kind == "dir_created":
            self._request_walk(item.path)
        elif kind == "dir_deleted":
            self._gone_dir(item.path)
        elif kind == "dir_moved":
            self._gone_dir(item.path)
            if item.dest is not None:
                self._request_walk(item.dest)
        elif kind == "seen":
            assert item.sig is not None
            self._seen(item.path, item.sig)
        elif kind == "rescan_done":
            self._rescan_done(item.path, item.seen, item.t)

    def _root_of(self, path: Path) -> Path | None:
        return next((f for f in self.folders if path.is_relative_to(f)), None)

    def _schedule(self, path: Path, entry: _Pending, due: float) -> None:
        entry.due = due
        heapq.heappush(self._heap, (due, next(self._seq), path))

    def _touch(self, path: Path, t: float, kind: str) -> None:
        """An event says ``path`` changed: ``kind`` is "changed" (content), "attrib" (metadata
        only) or "closed" (its writer closed it, or it was renamed into place)."""
        root = self._root_of(path)
        if root is None or not is_candidate(path, root):
            return
        closed = kind == "closed"
        entry = self._pending.get(path)
        if entry is None:
            self._pending[path] = entry = _Pending(last_event=t, closed=closed)
            self._schedule(path, entry, time.monotonic())  # first stat now
            return
        entry.last_event = max(entry.last_event, t)  # coalesced: the scheduled stat will see it
        if closed:
            entry.closed = True
            self._schedule(path, entry, time.monotonic())  # fast track: first stat now
        elif kind == "changed":
            entry.closed = False  # written again after a close

    def _check_due(self, now: float) -> None:
        while self._heap and self._heap[0][0] <= now:
            due, _, path = heapq.heappop(self._heap)
            entry = self._pending.get(path)
            if entry is not None and entry.due == due:
                try:
                    self._check(path, entry, now)
                except Exception:
                    logger.exception("watcher could not check %s; forgetting it until its next event", path)
                    self._pending.pop(path, None)

    def _check(self, path: Path, entry: _Pending, now: float) -> None:
        root = self._root_of(path)
        try:
            if root is None or not self.links.reachable(path, root):
                del self._pending[path]  # through a symlink not followed (reported once)
                return
            st = os.stat(path)
        except OSError:
            del self._pending[path]  # vanished; its delete event (or the next rescan) reports it
            return
        if not stat.S_ISREG(st.st_mode):
            del self._pending[path]
            return
        sig = (st.st_size, st.st_mtime_ns)
        no_event_since = entry.last_event <= entry.sampled_at
        quiet = self._confirm if entry.closed and looks_complete(path) else self._settle
        if sig == entry.sig and no_event_since and now - entry.sampled_at >= quiet - 1e-6:
            del self._pending[path]
            self._ready(path, sig, now)
            return
        entry.sig, entry.sampled_at = sig, now
        self._schedule(path, entry, now + quiet)

    def _ready(self, path: Path, sig: _Sig, now: float) -> None:
        known = self._known.get(path)
        if known is not None and known.reported == sig:
            return  # unchanged since we announced it
        if known is None:
            self._known[path] = known = _Known(since=now)
        known.reported = sig
        logger.debug("ready: %s (%d bytes)", path, sig[0])
        self._calls.put((self._on_ready, (path,), sig[0]))

    def _gone(self, path: Path) -> None:
        self._pending.pop(path, None)
        if self._known.pop(path, None) is not None:
            logger.debug("deleted: %s", path)
            self._calls.put((self._on_deleted, (path,), 0))

    def _gone_dir(self, directory: Path) -> None:
        if directory in self.folders:
            logger.warning("watched folder %s was deleted or moved away; only rescans will see it return", directory)
        prefix = f"{directory}{os.sep}"
        for path in [p for p in self._pending if str(p).startswith(prefix)]:
            del self._pending[path]
        for path in sorted(p for p in self._known if str(p).startswith(prefix)):  # O(known); rare
            self._gone(path)

    def _request_walk(self, directory: Path) -> None:
        root = self._root_of(directory)
        if root is None or any(is_ignored_name(part) for part in directory.relative_to(root).parts):
            return
        if not self.links.reachable(directory, root):
            return  # a linked folder (e.g. a loop moved in): not walked; reported once
        self._walk_requests.put(directory)

    def _seen(self, path: Path, sig: _Sig) -> None:
        now = time.monotonic()
        known = self._known.setdefault(path, _Known(since=now))
        if path in self._pending or known.reported == sig:
            return
        entry = _Pending(last_event=float("-inf"), sig=sig, sampled_at=now)
        self._pending[path] = entry
        self._schedule(path, entry, now + self._settle)

    def _rescan_done(self, folder: Path, seen: frozenset[Path], began: float) -> None:
        prefix = f"{folder}{os.sep}"
        stale = [
            p
            for p, k in self._known.items()
            if k.since < began and p not in seen and p not in self._pending and str(p).startswith(prefix)
        ]
        for path in stale:  # vanished without an event; on_rescan tells the receiver
            del self._known[path]
        if self._on_rescan is not None:
            self._calls.put((self._on_rescan, (folder, set(seen)), 0))


def _dispose(observer: BaseObserver) -> None:
    """Stop an observer and join its threads, whether or not it ever started."""
    try:
        observer.stop()
    except Exception:
        logger.debug("stopping the observer failed", exc_info=True)
    if observer.is_alive() or observer.ident is not None:
        observer.join()


def _walk(start: Path, found: Callable[[Path, _Sig], None], should_stop: Callable[[], bool], links: LinkPolicy) -> bool:
    """Depth-first walk of ``start`` with ``os.scandir``; calls ``found(path, (size, mtime_ns))``
    for every file with an image suffix. Skips ignored names (and never descends into them),
    follows a symlink only when ``links`` allows it, and walks each directory (st_dev, st_ino)
    once (no loops).

    Returns False when the walk is not trustworthy as a full listing: ``start`` is missing, a
    directory could not be listed for a reason other than permissions (I/O error, stale network
    handle), or ``should_stop()`` became true. Unreadable (permission-denied) folders are logged
    and treated as empty.
    """
    try:
        root_stat = os.stat(start)
    except OSError as exc:
        logger.warning("cannot walk %s: %s", start, exc)
        return False
    visited = {(root_stat.st_dev, root_stat.st_ino)}
    stack = [str(start)]
    complete = True
    while stack:
        if should_stop():
            return False
        directory = stack.pop()
        try:
            with os.scandir(directory) as entries:
                listing = list(entries)
        except FileNotFoundError:
            if directory == str(start):
                return False
            continue  # removed while we walked: nothing there any more
        except PermissionError as exc:
            logger.warning("skipping unreadable folder %s: %s", directory, exc)
            continue
        except OSError as exc:
            logger.warning("cannot list %s: %s", directory, exc)
            complete = False
            continue
        for entry in listing:
            if is_ignored_name(entry.name):
                continue
            try:
                if entry.is_symlink() and not links.allows(entry.path):
                    continue
                if entry.is_dir():
                    st = entry.stat()
                    key = (st.st_dev, st.st_ino)
                    if key in visited:
                        logger.debug("not walking %s again (symlink loop or duplicate)", entry.path)
                        continue
                    visited.add(key)
                    stack.append(entry.path)
                elif entry.is_file() and os.path.splitext(entry.name)[1].lower() in IMAGE_SUFFIXES:
                    st = entry.stat()
                    found(Path(entry.path), (st.st_size, st.st_mtime_ns))
            except OSError:
                continue  # vanished meanwhile, or a dangling symlink
    return complete
