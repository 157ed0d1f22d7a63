"""A first import registers ready files in batches: new files in one transaction, the rest one by one."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from blake3 import blake3
from sqlmodel import Session, select

from pipeline.ingest.ingestor import Ingestor
from pipeline.ingest.watcher import READY_BATCH, FolderWatcher
from pipeline.store import db, states
from pipeline.store.models import Photo
from tests.conftest import wait_for


class Sent:
    def __init__(self) -> None:
        self.ids: list[int] = []

    def add(self, photo_id: int) -> None:
        self.ids.append(photo_id)


def _rows() -> dict[str, Photo]:
    with Session(db.get_engine()) as session:
        return {Path(p.path).name: p for p in session.exec(select(Photo)).all()}


def test_files_ready_batches_new_files_and_keeps_moves(tmp_path: Path, data_dir: Path) -> None:
    db.upgrade()
    album = tmp_path / "album"
    album.mkdir()
    old = album / "old.jpg"
    old.write_bytes(b"photo that will move" * 20)
    sent = Sent()
    ingestor = Ingestor(sent)
    first_id = ingestor.file_ready(old)
    assert first_id is not None
    with Session(db.get_engine()) as session:  # tagged meanwhile
        row = session.get(Photo, first_id)
        assert row is not None
        row.state, row.model_version = "done", "faces:v1"
        session.add(row)
        session.commit()
    moved = album / "moved.jpg"
    old.rename(moved)
    copy_of_moved = album / "copy.jpg"
    copy_of_moved.write_bytes(moved.read_bytes())
    new = [album / f"new{i}.jpg" for i in range(5)]
    for i, path in enumerate(new):
        path.write_bytes(f"new photo {i}".encode() * 30)
    gone = album / "gone.jpg"  # vanished before its turn: skipped

    queued = ingestor.files_ready([*new, moved, gone, new[0], copy_of_moved])

    rows = _rows()
    assert set(rows) == {"moved.jpg", "copy.jpg", *(p.name for p in new)}
    assert rows["moved.jpg"].id == first_id and rows["moved.jpg"].state == "done"  # same row, not tagged again
    assert rows["copy.jpg"].id != first_id  # a duplicate next to its original is a photo of its own
    assert queued == [*(rows[p.name].id for p in new), rows["copy.jpg"].id]
    assert sent.ids == [first_id, *queued]
    assert ingestor.files_ready(new) == []  # unchanged: nothing to do


def test_watcher_hands_waiting_ready_files_on_together(tmp_path: Path) -> None:
    album = tmp_path / "album"
    album.mkdir()
    names = {f"p{i:03d}.jpg" for i in range(120)}
    for name in names:
        (album / name).write_bytes(b"\xff\xd8" + name.encode() + b"\xff\xd9")
    singles: list[Path] = []
    batches: list[list[Path]] = []
    lock = threading.Lock()

    def one(path: Path) -> None:
        with lock:
            singles.append(path)

    def many(paths: list[Path]) -> None:
        time.sleep(0.05)  # the next files queue up behind a busy receiver
        with lock:
            batches.append(paths)

    watcher = FolderWatcher(
        [album], on_ready=one, on_ready_many=many, on_deleted=lambda p: None, settle_seconds=0.2, rescan_interval=0
    )
    with watcher:

        def reported() -> list[str]:
            with lock:
                return [p.name for p in singles] + [p.name for b in batches for p in b]

        wait_for(lambda: len(reported()) >= len(names), timeout=60, message="every file reported")
        time.sleep(0.5)
        assert sorted(reported()) == sorted(names)  # each file once, none lost
    assert all(1 < len(b) <= READY_BATCH for b in batches)


@pytest.mark.postgres
def test_bulk_insert_returns_ids_in_order_on_postgres(postgres_url: str) -> None:
    db.upgrade(postgres_url)
    engine = db.make_engine(postgres_url)
    files = [
        {"path": f"/a/{i}.jpg", "path_bytes": None, "sha256": f"{i:064x}", "size": i, "mtime": 1.0} for i in range(50)
    ]
    with Session(engine) as session:
        ids = states.insert_new_photos(session, files)
        session.commit()
        rows = {p.id: p for p in session.exec(select(Photo)).all()}
    engine.dispose()
    assert [rows[i].path for i in ids] == [f["path"] for f in files]
    assert {p.state for p in rows.values()} == {"queued"} and {p.hash_kind for p in rows.values()} == {"blake3"}


def test_a_file_that_fails_does_not_lose_the_rest_of_the_batch(tmp_path: Path, data_dir: Path) -> None:
    db.upgrade()
    album = tmp_path / "album"
    album.mkdir()
    before = [album / f"a{i}.jpg" for i in range(3)]
    after = [album / f"b{i}.jpg" for i in range(3)]
    for i, path in enumerate([*before, *after]):
        path.write_bytes(f"photo {i}".encode() * 40)
    broken = album / "folder.jpg"  # cannot be read as a file (IsADirectoryError), in the middle
    broken.mkdir()
    sent = Sent()

    queued = Ingestor(sent).files_ready([*before, broken, *after])

    rows = _rows()
    assert set(rows) == {p.name for p in [*before, *after]}
    assert queued == sent.ids == [rows[p.name].id for p in [*before, *after]]


@contextmanager
def appending(path: Path) -> Iterator[None]:
    """A real writer appending to ``path`` (48 MiB to start with, so a read of it takes long
    enough for writes to land during it) until the block ends."""
    path.write_bytes(os.urandom(48 << 20))
    stop = threading.Event()

    def append() -> None:
        with path.open("ab", buffering=0) as handle:
            while not stop.is_set():
                handle.write(os.urandom(4096))

    writer = threading.Thread(target=append)
    writer.start()
    try:
        yield
    finally:
        stop.set()
        writer.join()


def _consistent(path: Path, row: Photo | None) -> bool:
    """No row, or one whose size and hash describe one version of the appended-to file (its
    first ``row.size`` bytes never change)."""
    if row is None:
        return True
    with path.open("rb") as handle:
        return bool(blake3(handle.read(row.size)).hexdigest() == row.sha256)


def test_a_file_written_while_the_batch_hashes_it_is_left_for_later(tmp_path: Path, data_dir: Path) -> None:
    db.upgrade()
    album = tmp_path / "album"
    album.mkdir()
    quiet = [album / f"q{i}.jpg" for i in range(4)]
    for i, path in enumerate(quiet):
        path.write_bytes(f"quiet photo {i}".encode() * 40)
    growing = album / "growing.jpg"
    with appending(growing):
        queued = Ingestor(Sent()).files_ready([quiet[0], quiet[1], growing, quiet[2], quiet[3]])

    rows = _rows()
    assert {p.name for p in quiet} <= set(rows)
    assert queued[:2] + queued[-2:] == [rows[p.name].id for p in quiet]
    assert _consistent(growing, rows.get("growing.jpg"))


def test_one_file_written_while_it_is_hashed_registers_nothing_from_that_read(tmp_path: Path, data_dir: Path) -> None:
    db.upgrade()
    album = tmp_path / "album"
    album.mkdir()
    growing = album / "growing.jpg"
    ingestor = Ingestor(Sent())
    with appending(growing):
        for _ in range(3):  # new, then changed: each read that registers must describe one version
            ingestor.file_ready(growing)
            assert _consistent(growing, _rows().get("growing.jpg"))

    ingestor.file_ready(growing)  # quiet now: the whole file
    final = _rows()["growing.jpg"]
    assert (final.size, final.sha256) == (growing.stat().st_size, blake3(growing.read_bytes()).hexdigest())
