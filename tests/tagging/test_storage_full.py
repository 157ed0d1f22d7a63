"""A full disk under the database (a real tmpfs filled to the last byte): the worker keeps its
claims and waits with backoff, the ingestor defers new files; both finish once there is room,
each photo exactly once."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import col, select

from pipeline.config import get_settings
from pipeline.ingest.ingestor import Ingestor
from pipeline.store.db import dispose_engines, session_scope, upgrade
from pipeline.store.models import Caption, Photo
from pipeline.tagging.batch import Outcome, process_photos
from tests import images
from tests.conftest import wait_for
from tests.small_disk import SmallDisk, mount_small_disk


@pytest.fixture
def disk(tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SmallDisk]:
    """The data directory (SQLite database) on a small tmpfs, migrated."""
    for small in mount_small_disk(tmp_path / "disk"):
        monkeypatch.setenv("PIPELINE_DATA_DIR", str(small.mountpoint / "data"))
        get_settings.cache_clear()
        upgrade()
        try:
            yield small
        finally:
            dispose_engines()
            get_settings.cache_clear()


def _photos(folder: Path, n: int) -> list[Path]:
    return [images.save_jpeg(images.astronaut()[: 400 + 10 * i], folder / f"p{i}.jpg") for i in range(n)]


def test_ingestor_defers_files_until_there_is_room(tmp_path: Path, disk: SmallDisk) -> None:
    files = _photos(tmp_path / "album", 2)
    ingestor = Ingestor(sender=None)
    disk.fill()
    assert [ingestor.file_ready(f) for f in files] == [None, None]
    assert ingestor.deferred == 2 and ingestor.retry_deferred() == 0  # still full: nothing lost, nothing done
    disk.free()
    assert ingestor.retry_deferred() == 2 and ingestor.deferred == 0
    with session_scope() as session:
        assert sorted(session.exec(select(Photo.path)).all()) == sorted(str(f) for f in files)


def test_worker_waits_for_room_and_finishes_each_photo_once(
    tmp_path: Path, disk: SmallDisk, caplog: pytest.LogCaptureFixture
) -> None:
    ingestor = Ingestor(sender=None)
    ids = [ingestor.file_ready(f) for f in _photos(tmp_path / "album", 3)]
    assert all(ids)
    disk.fill()
    outcome: list[Outcome] = []
    worker = threading.Thread(
        target=lambda: outcome.append(process_photos([i for i in ids if i], "task-full", get_settings()))
    )
    with caplog.at_level(logging.INFO):
        worker.start()
        wait_for(lambda: "storage full while" in caplog.text, timeout=120, message="a backoff message")
        assert worker.is_alive()  # waiting, not failing
        disk.free()
        worker.join(180)
    assert not worker.is_alive() and outcome
    assert sorted(outcome[0].done) == sorted(ids)
    with session_scope() as session:
        rows = session.exec(select(Photo.state, Photo.attempts, Photo.error)).all()
        captions = session.exec(select(col(Caption.photo_id))).all()
    assert rows == [("done", 1, None)] * 3  # not an attempt lost to the full disk
    assert sorted(captions) == sorted(ids)  # one caption each
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING and "storage full" in r.message]
    assert len(warnings) <= 3  # one per wait episode, not a storm
