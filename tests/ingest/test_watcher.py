"""pipeline.ingest.watcher with real folders, real watchdog observers (inotify and polling), real JPEGs."""

from __future__ import annotations

import errno
import io
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PIL import Image
from skimage import data

import pipeline.ingest.watcher as watcher_module
from pipeline.ingest.watcher import FolderWatcher

SETTLE = 0.3  # seconds; short so the suite stays fast
QUIET = 3 * SETTLE  # how long "nothing else happens" is watched for


@pytest.fixture(scope="module")
def jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(data.astronaut()).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


class Recorder:
    """Collects callbacks (from the dispatcher thread) and lets the test wait for them."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Path, int | None, float]] = []
        self.rescans: list[tuple[Path, set[Path]]] = []
        self.threads: set[str] = set()
        self._cond = threading.Condition()

    def _add(self, kind: str, path: Path) -> None:
        size = path.stat().st_size if kind == "ready" else None
        with self._cond:
            self.threads.add(threading.current_thread().name)
            self.events.append((kind, path, size, time.monotonic()))
            self._cond.notify_all()

    def on_ready(self, path: Path) -> None:
        self._add("ready", path)

    def on_deleted(self, path: Path) -> None:
        self._add("deleted", path)

    def on_rescan(self, folder: Path, seen: set[Path]) -> None:
        with self._cond:
            self.rescans.append((folder, seen))
            self._cond.notify_all()

    def of(self, kind: str) -> list[Path]:
        with self._cond:
            return [path for k, path, _, _ in self.events if k == kind]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 8.0) -> bool:
        with self._cond:
            return self._cond.wait_for(predicate, timeout)


@pytest.fixture(params=[False, True], ids=["inotify", "polling"])
def polling(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    return folder.resolve()


@pytest.fixture
def start(polling: bool) -> Iterator[Callable[..., tuple[FolderWatcher, Recorder]]]:
    """start(folder, **options) -> (started watcher, recorder); waits for the initial rescan."""
    watchers: list[FolderWatcher] = []

    def _start(folder: Path, recorder: Recorder | None = None, **options: object) -> tuple[FolderWatcher, Recorder]:
        rec = recorder or Recorder()
        settings: dict[str, object] = {
            "polling": polling,
            "poll_interval": 0.1,
            "settle_seconds": SETTLE,
            "rescan_interval": 0,
        }
        settings.update(options)
        watcher = FolderWatcher(
            [folder],
            on_ready=rec.on_ready,
            on_deleted=rec.on_deleted,
            on_rescan=rec.on_rescan,
            **settings,  # type: ignore[arg-type]
        )
        watchers.append(watcher)
        watcher.start()
        assert watcher.observer_kind == ("polling" if polling else "native")
        assert rec.wait_for(lambda: len(rec.rescans) >= 1), "no initial rescan"
        return watcher, rec

    yield _start
    for watcher in watchers:
        watcher.stop()


def test_new_file_gives_one_on_ready(
    start: Callable[..., tuple[FolderWatcher, Recorder]], root: Path, jpeg: bytes
) -> None:
    watcher, rec = start(root)
    (root / "new.jpg").write_bytes(jpeg)
    assert rec.wait_for(lambda: rec.of("ready"))
    time.sleep(QUIET)
    assert rec.events[0][:3] == ("ready", root / "new.jpg", len(jpeg))
    assert len(rec.events) == 1
    assert rec.threads == {"FolderWatcher-dispatcher"}


def test_part_file_renamed_reports_only_final_name(
    start: Callable[..., tuple[FolderWatcher, Recorder]], root: Path, jpeg: bytes
) -> None:
    watcher, rec = start(root)
    part = root / "download.jpg.part"
    with part.open("wb") as handle:
        for offset in range(0, len(jpeg), len(jpeg) // 3 + 1):
            handle.write(jpeg[offset : offset + len(jpeg) // 3 + 1])
            handle.flush()
            time.sleep(0.15)
    part.rename(root / "download.jpg")
    assert rec.wait_for(lambda: rec.of("ready"))
    time.sleep(QUIET)
    assert [e[:3] for e in rec.events] == [("ready", root / "download.jpg", len(jpeg))]


def test_hidden_temp_and_junk_files_are_ignored(
    start: Callable[..., tuple[FolderWatcher, Recorder]], root: Path, jpeg: bytes
) -> None:
    watcher, rec = start(root)
    for name in [
        ".hidden.jpg",
        "~lock.jpg",
        ".sync/a.jpg",
        "@eaDir/x.jpg/SYNOPHOTO_THUMB_M.jpg",
        "#recycle/old.jpg",
        "notes.txt",
        "b.jpg.crdownload",
        ".b.jpg.Xk3s9Q",
        ".syncthing.c.jpg.tmp",
        "d.jpg.~tmp",
    ]:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(jpeg)
    (root / ".sync" / "a.jpg").unlink()
    time.sleep(QUIET)
    (root / "real.jpg").write_bytes(jpeg)  # proves the watcher is alive and was just filtering
    assert rec.wait_for(lambda: rec.of("ready"))
    time.sleep(SETTLE)
    assert [e[:2] for e in rec.events] == [("ready", root / "real.jpg")]


def test_slow_chunked_write_reported_once_after_completion(
    start: Callable[..., tuple[FolderWatcher, Recorder]], root: Path, jpeg: bytes
) -> None:
    """5 chunks 0.4 s apart, settle 1 s: one handle kept open, and one reopened per chunk
    (its close events must not fast-track it before the writer is done)."""
    watcher, rec = start(root, settle_seconds=1.0)
    kept, reopened = root / "kept_open.jpg", root / "reopened.jpg"
    chunk = len(jpeg) // 5 + 1
    with kept.open("wb") as handle:
        for i in range(5):
            handle.write(jpeg[i * chunk : (i + 1) * chunk])
            handle.flush()
            with reopened.open("ab") as other:
                other.write(jpeg[i * chunk : (i + 1) * chunk])
            if i < 4:
                time.sleep(0.4)
        last_write = time.monotonic()
    assert rec.wait_for(lambda: len(rec.of("ready")) >= 2)
    time.sleep(1.2)
    ready = sorted((e for e in rec.events if e[0] == "ready"), key=lambda e: e[1].name)
    assert [(path, size) for _, path, size, _ in ready] == [(kept, len(jpeg)), (reopened, len(jpeg))]
    assert all(when >= last_write for *_, when in ready)
    assert len(rec.events) == 2


def test_closed_or_renamed_complete_file_is_fast_tracked_truncated_one_waits(
    start: Callable[..., tuple[FolderWatcher, Recorder]], root: Path, jpeg: bytes, polling: bool
) -> None:
    """settle 4 s: a JPEG closed by its writer or renamed into place that ends with its end
    marker needs one confirming stat; a closed but truncated one waits the full settle, and so
    does every new file the polling observer sees (no close events; a write-then-rename between
    two snapshots is one new file)."""
    settle = 4.0
    watcher, rec = start(root, settle_seconds=settle, confirm_seconds=0.2)
    began = time.monotonic()
    (root / "closed.jpg").write_bytes(jpeg)
    (root / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    (root / ".renamed.jpg.part").write_bytes(jpeg)
    (root / ".renamed.jpg.part").rename(root / "renamed.jpg")
    written = time.monotonic()
    assert rec.wait_for(lambda: len(rec.of("ready")) >= 3, timeout=15)
    when = {path.name: at for kind, path, _, at in rec.events if kind == "ready"}
    assert set(when) == {"closed.jpg", "truncated.jpg", "renamed.jpg"}
    assert when["truncated.jpg"] - began >= settle - 0.05
    for name in ("closed.jpg", "renamed.jpg"):
        if polling:  # a snapshot shows a new file, whichever way it was written
            assert when[name] - began >= settle - 0.05, name
        else:
            assert when[name] - written < settle / 2, name


def test_moves_and_renames_inside_the_tree(
    start: Callable[..., tuple[FolderWatcher, Recorder]], root: Path, jpeg: bytes
) -> None:
    (root / "album").mkdir()
    (root / "a.jpg").write_bytes(jpeg)
    (root / "album" / "b.jpg").write_bytes(jpeg)
    watcher, rec = start(root)
    assert rec.wait_for(lambda: len(rec.of("ready")) == 2)

    (root / "a.jpg").rename(root / "album" / "a2.jpg")
    assert rec.wait_for(lambda: rec.of("ready")[2:] == [root / "album" / "a2.jpg"])
    assert rec.of("deleted") == [root / "a.jpg"]
    assert [e[:2] for e in rec.events[2:4]] == [("deleted", root / "a.jpg"), ("ready", root / "album" / "a2.jpg")]

    (root / "album").rename(root / "trip")  # a directory move
    moved = {root / "trip" / "a2.jpg", root / "trip" / "b.jpg"}
    assert rec.wait_for(lambda: set(rec.of("ready")[3:]) == moved)
    time.sleep(QUIET)
    assert set(rec.of("deleted")[1:]) == {root / "album" / "a2.jpg", root / "album" / "b.jpg"}
    assert len(rec.of("deleted")) == 3 and len(rec.of("ready")) == 5


def test_moves_across_the_tree_boundary(
    start: Callable[..., tuple[FolderWatcher, Recorder]], root: Path, tmp_path: Path, jpeg: bytes
) -> None:
    outside = tmp_path / "outside"
    (outside / "batch").mkdir(parents=True)
    (outside / "in.jpg").write_bytes(jpeg)
    (outside / "batch" / "1.jpg").write_bytes(jpeg)
    (outside / "batch" / "2.png").write_bytes(jpeg)
    watcher, rec = start(root)

    (outside / "in.jpg").rename(root / "in.jpg")  # move in: created
    (outside / "batch").rename(root / "batch")  # directory moved in: walked
    expected = {root / "in.jpg", root / "batch" / "1.jpg", root / "batch" / "2.png"}
    assert rec.wait_for(lambda: set(rec.of("ready")) == expected)

    (root / "in.jpg").rename(outside / "in.jpg")  # move out: deleted
    shutil.move(str(root / "batch"), str(outside / "batch"))
    gone = {root / "in.jpg", root / "batch" / "1.jpg", root / "batch" / "2.png"}
    assert rec.wait_for(lambda: set(rec.of("deleted")) == gone)
    time.sleep(QUIET)
    assert len(rec.of("ready")) == 3 and len(rec.of("deleted")) == 3


def test_deletes_of_files_and_folders(
    start: Callable[..., tuple[FolderWatcher, Recorder]], root: Path, jpeg: bytes
) -> None:
    (root / "x" / "y").mkdir(parents=True)
    files = [root / "top.jpg", root / "x" / "1.jpg", root / "x" / "y" / "2.jpg"]
    for path in files:
        path.write_bytes(jpeg)
    watcher, rec = start(root)
    assert rec.wait_for(lambda: len(rec.of("ready")) == 3)

    (root / "top.jpg").unlink()
    assert rec.wait_for(lambda: rec.of("deleted") == [root / "top.jpg"])
    shutil.rmtree(root / "x")
    assert rec.wait_for(lambda: set(rec.of("deleted")) == set(files))
    (root / "never-stable.jpg").write_bytes(jpeg)  # deleted before it settled: nobody heard of it
    (root / "never-stable.jpg").unlink()
    time.sleep(QUIET)
    assert len(rec.of("deleted")) == 3 and len(rec.of("ready")) == 3


def test_initial_and_manual_rescans(
    start: Callable[..., tuple[FolderWatcher, Recorder]], root: Path, jpeg: bytes
) -> None:
    (root / "2023" / "summer").mkdir(parents=True)
    (root / ".thumbs").mkdir()
    before = {root / "a.jpg", root / "2023" / "b.HEIC", root / "2023" / "summer" / "c.jpeg", root / "empty.jpg"}
    for path in before - {root / "empty.jpg"}:
        path.write_bytes(jpeg)
    (root / "empty.jpg").touch()  # zero bytes: still reported, the receiver decides
    (root / ".thumbs" / "t.jpg").write_bytes(jpeg)
    (root / "2023" / "notes.txt").write_text("x")
    (root / "2023" / "loop").symlink_to(root, target_is_directory=True)  # a symlink loop

    watcher, rec = start(root)
    assert rec.rescans[0] == (root, before)
    assert rec.wait_for(lambda: set(rec.of("ready")) == before)

    os.chmod(root / "a.jpg", 0o600)  # metadata-only change (attrib event): not reported again
    watcher.rescan()  # unchanged files are not reported again
    assert rec.wait_for(lambda: len(rec.rescans) == 2)
    assert rec.rescans[1] == (root, before)
    time.sleep(QUIET)
    assert len(rec.of("ready")) == 4

    with (root / "a.jpg").open("ab") as handle:  # changed content: reported again
        handle.write(b"\0" * 10)
    assert rec.wait_for(lambda: len(rec.of("ready")) == 5)
    assert rec.events[-1][:3] == ("ready", root / "a.jpg", len(jpeg) + 10)


def test_periodic_rescan_and_missing_root(tmp_path: Path, jpeg: bytes) -> None:
    folder = tmp_path / "share"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(jpeg)
    rec = Recorder()
    watcher = FolderWatcher(
        [folder],
        on_ready=rec.on_ready,
        on_deleted=rec.on_deleted,
        on_rescan=rec.on_rescan,
        settle_seconds=SETTLE,
        rescan_interval=0.3,
    )
    with watcher:
        assert rec.wait_for(lambda: len(rec.rescans) >= 3)
        assert all(seen == {folder.resolve() / "a.jpg"} for _, seen in rec.rescans)
        shutil.rmtree(folder)  # like an unmounted share: must not look like an empty library
        assert rec.wait_for(lambda: rec.of("deleted") == [folder.resolve() / "a.jpg"])
        count = len(rec.rescans)
        time.sleep(1.0)
        assert len(rec.rescans) == count
    with pytest.raises(FileNotFoundError, match="does not exist"):
        FolderWatcher([folder], on_ready=rec.on_ready, on_deleted=rec.on_deleted).start()


def test_callback_exception_does_not_stop_later_callbacks(
    start: Callable[..., tuple[FolderWatcher, Recorder]], root: Path, jpeg: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    rec = Recorder()
    original = rec.on_ready

    def flaky(path: Path) -> None:
        original(path)
        if path.name == "first.jpg":
            raise RuntimeError("database is locked")

    rec.on_ready = flaky  # type: ignore[method-assign]
    watcher, _ = start(root, recorder=rec)
    (root / "first.jpg").write_bytes(jpeg)
    assert rec.wait_for(lambda: rec.of("ready") == [root / "first.jpg"])
    (root / "second.jpg").write_bytes(jpeg)
    assert rec.wait_for(lambda: len(rec.of("ready")) == 2)
    assert "database is locked" in caplog.text


def test_stop_joins_every_thread(polling: bool, root: Path, jpeg: bytes) -> None:
    before = set(threading.enumerate())
    rec = Recorder()
    watcher = FolderWatcher(
        [root],
        on_ready=rec.on_ready,
        on_deleted=rec.on_deleted,
        polling=polling,
        poll_interval=0.1,
        settle_seconds=SETTLE,
        rescan_interval=0.2,
    )
    watcher.stop()  # before start: no-op
    watcher.start()
    (root / "a.jpg").write_bytes(jpeg)
    assert rec.wait_for(lambda: rec.of("ready"))
    assert len(set(threading.enumerate()) - before) >= 4
    began = time.monotonic()
    watcher.stop()
    watcher.stop()  # idempotent
    assert time.monotonic() - began < 3
    assert set(threading.enumerate()) - before == set()
    with pytest.raises(RuntimeError):
        watcher.start()


def test_inotify_limit_falls_back_to_polling(
    root: Path, jpeg: bytes, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def exhausted() -> None:
        raise OSError(errno.ENOSPC, "inotify watch limit reached")

    monkeypatch.setattr(watcher_module, "Observer", exhausted)
    rec = Recorder()
    caplog.set_level(logging.ERROR, logger="pipeline.ingest.watcher")
    with FolderWatcher(
        [root], on_ready=rec.on_ready, on_deleted=rec.on_deleted, poll_interval=0.1, settle_seconds=SETTLE
    ) as watcher:
        assert watcher.observer_kind == "polling"
        (root / "a.jpg").write_bytes(jpeg)
        assert rec.wait_for(lambda: rec.of("ready") == [root / "a.jpg"])
    assert "fs.inotify.max_user_watches" in caplog.text


def test_inotify_limit_on_a_real_observer_is_cleaned_up(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The limit error raised by a real observer's start: its threads must not leak."""
    if watcher_module.Observer.__name__ != "InotifyObserver":
        pytest.skip("inotify only")
    from watchdog.observers import inotify

    def refuse(self: object) -> None:
        raise OSError(errno.ENOSPC, "inotify watch limit reached")

    monkeypatch.setattr(inotify.InotifyEmitter, "on_thread_start", refuse)
    before = set(threading.enumerate())
    rec = Recorder()
    watcher = FolderWatcher([root], on_ready=rec.on_ready, on_deleted=rec.on_deleted, poll_interval=0.1)
    watcher.start()
    assert watcher.observer_kind == "polling"
    watcher.stop()
    assert set(threading.enumerate()) - before == set()
    assert os.path.isdir(root)
