"""Bad paths with real files on disk: any bytes in a name are stored losslessly and shown escaped;
folder symlink loops are not walked twice; symlinks leaving the watched folders are not followed
(unless ``follow_symlinks``) and each is reported once."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session, select

from pipeline.config import get_settings
from pipeline.ingest.ingestor import Ingestor, make_watcher
from pipeline.ingest.watcher import FolderWatcher
from pipeline.photos.path_text import path_text, shown
from pipeline.store.db import get_engine, upgrade
from pipeline.store.models import Photo
from tests import images
from tests.conftest import wait_for

BAD = b"bad_\xff\xfe name.jpg"  # not UTF-8


def test_path_text_is_lossless() -> None:
    name = os.fsdecode(b"/photos/" + BAD)
    text, raw = path_text(name)
    assert text == "/photos/bad_\\xff\\xfe name.jpg" and raw == b"/photos/" + BAD
    assert os.fsdecode(raw) == name
    assert path_text("/photos/Zoë.jpg") == ("/photos/Zoë.jpg", None)
    assert shown(name) == text


def _rows() -> dict[str, Photo]:
    with Session(get_engine()) as session:
        return {p.path: p for p in session.exec(select(Photo)).all()}


@pytest.fixture
def album(tmp_path: Path, data_dir: Path) -> Path:
    upgrade()
    folder = tmp_path / "album"
    folder.mkdir()
    return folder.resolve()


@pytest.fixture
def watch(album: Path) -> Iterator[list[FolderWatcher]]:
    started: list[FolderWatcher] = []
    yield started
    for watcher in started:
        watcher.stop()


def _start(album: Path, started: list[FolderWatcher]) -> Ingestor:
    ingestor = Ingestor(None, get_settings().db_url)
    watcher = make_watcher([album], ingestor, get_settings())
    started.append(watcher)
    watcher.start()
    return ingestor


def test_any_bytes_in_a_name_are_stored_and_tagged(album: Path, watch: list[FolderWatcher]) -> None:
    from pipeline.tagging.batch import process_photos

    jpeg = images.save_jpeg(images.astronaut(), album / "good.jpg").read_bytes()
    raw_path = os.fsencode(album) + b"/" + BAD
    with open(raw_path, "wb") as handle:
        handle.write(jpeg)
    broken_raw = os.fsencode(album) + b"/broken_\xff.jpg"
    with open(broken_raw, "wb") as handle:
        handle.write(b"\xff\xd8\xff\xe0 not really a jpeg")
    _start(album, watch)
    escaped, broken = f"{album}/bad_\\xff\\xfe name.jpg", f"{album}/broken_\\xff.jpg"
    wait_for(lambda: set(_rows()) == {f"{album}/good.jpg", escaped, broken}, timeout=60, message="photos registered")
    row = _rows()[escaped]
    assert row.path_bytes == raw_path and row.file_path == os.fsdecode(raw_path)
    assert Path(row.file_path).read_bytes() == jpeg  # the stored name opens the very file
    assert row.id is not None
    broken_id = _rows()[broken].id
    assert broken_id is not None
    outcome = process_photos([row.id, broken_id], "t-bytes", get_settings())
    assert outcome.done == [row.id] and outcome.failed == [broken_id]
    assert _rows()[escaped].state == "done"
    assert _rows()[broken].state == "failed" and _rows()[broken].error  # a reason, stored as text
    os.remove(raw_path)  # deletion is noticed for such names too
    wait_for(lambda: _rows()[escaped].state == "missing", timeout=60, message="missing")


def test_symlink_loops_are_walked_once(
    album: Path, watch: list[FolderWatcher], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="pipeline.ingest.watcher")
    jpeg = images.save_jpeg(images.astronaut(), album / "a.jpg").read_bytes()
    (album / "sub").mkdir()
    (album / "sub" / "b.jpg").write_bytes(jpeg[:-10] + b"0123456789")  # another photo (other hash)
    (album / "sub" / "loop").symlink_to("..", target_is_directory=True)
    _start(album, watch)
    expected = {f"{album}/a.jpg", f"{album}/sub/b.jpg"}
    wait_for(lambda: set(_rows()) == expected, timeout=60, message="the two photos")
    # A folder moved in later with a loop in it: its walk must not find the album again.
    staging = album.parent / "staging"
    staging.mkdir()
    (staging / "up").symlink_to(album, target_is_directory=True)
    (staging / "c.jpg").write_bytes(jpeg[:-10] + b"abcdefghij")
    staging.rename(album / "new")
    expected.add(f"{album}/new/c.jpg")
    wait_for(lambda: set(_rows()) == expected, timeout=60, message="the new photo")
    time.sleep(2)
    assert set(_rows()) == expected, "no photo ingested a second time through a loop"
    warnings = [r.getMessage() for r in caplog.records if "not following symlink" in r.getMessage()]
    assert any(f"{album}/sub/loop" in w for w in warnings) and any(f"{album}/new/up" in w for w in warnings)
    assert len([w for w in warnings if f"{album}/sub/loop ->" in w]) == 1, "each link reported once"


@pytest.mark.parametrize("follow", [False, True])
def test_links_leaving_the_folders(
    album: Path,
    tmp_path: Path,
    watch: list[FolderWatcher],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    follow: bool,
) -> None:
    monkeypatch.setenv("PIPELINE_FOLLOW_SYMLINKS", str(follow).lower())
    get_settings.cache_clear()
    caplog.set_level(logging.WARNING, logger="pipeline.ingest.watcher")
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = images.save_jpeg(images.grace_hopper(), outside / "secret.jpg")
    images.save_jpeg(images.astronaut(), album / "own.jpg")
    (album / "x.jpg").symlink_to(secret)  # a file link out of the album
    (album / "share").symlink_to(outside, target_is_directory=True)  # a folder link out of it
    _start(album, watch)
    wait_for(lambda: f"{album}/own.jpg" in _rows(), timeout=60, message="the album's own photo")
    (album / "later.jpg").symlink_to(secret)  # arrives while watching: an event, not a walk
    time.sleep(3)
    followed = {f"{album}/x.jpg", f"{album}/share/secret.jpg", f"{album}/later.jpg"}
    if follow:
        wait_for(lambda: set(_rows()) == {f"{album}/own.jpg", *followed}, timeout=60, message="links followed")
    else:
        assert set(_rows()) == {f"{album}/own.jpg"}
        messages = " ".join(r.getMessage() for r in caplog.records)
        for link in ("x.jpg", "share", "later.jpg"):
            assert f"not following symlink {album}/{link} -> " in messages, link
        assert "leaves the watched folders" in messages
