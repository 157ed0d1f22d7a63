"""Faults while `pipeline run` works: the database file deleted under it, a worker killed with
SIGKILL, the disk filling up. Each ends with every photo done or failed with a reason (exactly
once), or with the pipeline stopped and a one-line error, never with results written into the
void. Real processes, the embedded Redis, real SQLite files."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests import images
from tests.conftest import PIPELINE, wait_for
from tests.service.test_end_to_end import _rows, _start_run, _stop_run
from tests.service.test_recovery import _variants, _worker_processes
from tests.small_disk import SmallDisk, mount_small_disk

pytestmark = pytest.mark.slow


def _counts(data_dir: Path) -> dict[str, int]:
    """Photos per state; empty until `pipeline run` has created the database."""
    from sqlalchemy.exc import OperationalError

    if not (data_dir / "pipeline.db").exists():
        return {}
    try:
        return dict(_rows(data_dir, "SELECT state, count(*) FROM photos GROUP BY state"))  # type: ignore[arg-type]
    except OperationalError:  # the tables are being created
        return {}


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith("PIPELINE_")}


def _database_fault_stops_run(tmp_path: Path, data_dir: Path, photos: int, fault: Callable[[], None]) -> str:
    """Run on ``photos`` photos until they are done, apply ``fault`` to the database file, and
    return the output once `pipeline run` has stopped by itself with exactly one error line."""
    album = tmp_path / "album"
    album.mkdir()
    for i, img in enumerate(_variants(photos)):
        images.save_jpeg(img, album / f"a{i}.jpg")
    run = _start_run(album, _env())
    try:
        wait_for(lambda: _counts(data_dir).get("done", 0) == photos, timeout=120, message="first photos done")
        fault()
        images.save_jpeg(_variants(1, start=50)[0], album / "after.jpg")
        output, _ = run.communicate(timeout=90)
    except BaseException:
        _stop_run(run)
        raise
    assert run.returncode == 1, output
    assert "Traceback" not in output and "stopping" in output, output  # the children were stopped in order
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, output
    return errors[0]


def test_database_deleted_while_running_stops_with_an_error(tmp_path: Path, data_dir: Path) -> None:
    def delete() -> None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{data_dir / 'pipeline.db'}{suffix}").unlink(missing_ok=True)

    error = _database_fault_stops_run(tmp_path, data_dir, 2, delete)
    assert "was deleted" in error
    assert not (data_dir / "pipeline.db").exists(), "a new empty database appeared"


def test_database_replaced_while_running_stops_with_an_error(tmp_path: Path, data_dir: Path) -> None:
    def replace() -> None:  # e.g. a backup restored over the running database
        backup = tmp_path / "backup.db"
        backup.write_bytes((data_dir / "pipeline.db").read_bytes())
        backup.replace(data_dir / "pipeline.db")

    error = _database_fault_stops_run(tmp_path, data_dir, 1, replace)
    assert "replaced by another file" in error
    assert _rows(data_dir, "SELECT count(*) FROM photos") == [(1,)]  # nothing written into the old file


def test_worker_killed_claims_recovered_without_waiting_for_staleness(tmp_path: Path, data_dir: Path) -> None:
    """SIGKILL of the whole worker (main process and pool) mid-batch: its claims go back to the
    queue because their owner is gone (stale_after is 10 minutes here, so staleness cannot be
    what frees them); every photo ends done exactly once."""
    env = _env()
    env.update(PIPELINE_STALE_AFTER="600", PIPELINE_BATCH_SIZE="4")
    album = tmp_path / "album"
    album.mkdir()
    run = _start_run(album, env)
    try:
        for i, img in enumerate(_variants(8)):
            images.save_jpeg(img, album / f"a{i}.jpg")
        wait_for(lambda: _counts(data_dir).get("processing", 0) > 0, timeout=120, interval=0.05, message="a batch")
        main, pool = _worker_processes(run.pid)
        for proc in [main, *pool]:
            proc.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        wait_for(lambda: _counts(data_dir).get("done", 0) == 8, timeout=240, message="every photo done")
        recovered_s = time.monotonic() - killed_at
    finally:
        output = _stop_run(run)
    assert "restart" in output, output
    per_photo = _rows(
        data_dir,
        "SELECT p.path, p.attempts, (SELECT count(*) FROM captions c WHERE c.photo_id = p.id) FROM photos p",
    )
    assert len(per_photo) == 8
    for path, attempts, n_captions in per_photo:
        assert n_captions == 1 and attempts <= 2, (path, attempts, n_captions)
    assert recovered_s < 240  # reported by the fault bench; here only: not the 10-minute staleness


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[SmallDisk]:
    yield from mount_small_disk(tmp_path / "disk")


def test_disk_full_while_running_waits_then_finishes_without_a_restart(
    tmp_path: Path, data_dir: Path, disk: SmallDisk
) -> None:
    """The data directory (database, embedded Redis, logs) on a small tmpfs filled to the last
    byte while photos arrive: one line says so, nothing is lost or failed, and once space is
    freed every photo ends done exactly once without restarting `pipeline run`."""
    data = disk.mountpoint / "data"
    env = _env()
    env["PIPELINE_DATA_DIR"] = str(data)
    album = tmp_path / "album"
    album.mkdir()
    run = _start_run(album, env)
    try:
        for i, img in enumerate(_variants(2)):
            images.save_jpeg(img, album / f"a{i}.jpg")
        wait_for(lambda: _counts(data).get("done", 0) == 2, timeout=120, message="first photos done")
        disk.fill()
        for i, img in enumerate(_variants(6, start=10)):
            images.save_jpeg(img, album / f"b{i}.jpg")
        time.sleep(8)
        assert _counts(data).get("done", 0) < 8
        disk.free()
        wait_for(lambda: _counts(data) == {"done": 8}, timeout=120, message="every photo done")
    finally:
        output = _stop_run(run)
    assert "storage full" in output and "room again" in output, output
    assert "Traceback" not in output and "restarted" not in output, output
    per_photo = _rows(data, "SELECT (SELECT count(*) FROM captions c WHERE c.photo_id = p.id) FROM photos p")
    assert per_photo == [(1,)] * 8


def test_watch_stops_when_its_database_is_deleted(tmp_path: Path, data_dir: Path) -> None:
    """`pipeline watch` (the watcher alone, no broker here) checks the file too."""
    album = tmp_path / "album"
    album.mkdir()
    full = dict(os.environ)
    full.update(_env())
    watch = subprocess.Popen(
        [*PIPELINE, "watch", str(album)], env=full, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        images.save_jpeg(_variants(1)[0], album / "a.jpg")
        wait_for(lambda: _counts(data_dir).get("queued", 0) == 1, timeout=120, message="the photo registered")
        (data_dir / "pipeline.db").unlink()
        output, _ = watch.communicate(timeout=60)
    except BaseException:
        watch.kill()
        raise
    assert watch.returncode == 1, output
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "was deleted" in errors[0], output
