"""Recovery: a worker killed mid-batch and a broker that goes away while photos arrive.

Afterwards every photo is ``done`` (or ``failed`` with a reason): none lost, none duplicated.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from tests import images
from tests.conftest import RedisServer, cli, free_port, wait_for
from tests.service.test_end_to_end import _rows, _start_run, _stop_run

pytestmark = pytest.mark.slow


def _variants(n: int, start: int = 0) -> list[np.ndarray]:
    """Distinct photos (different bytes, same faces): a coloured stripe encodes the index."""
    a, g = images.astronaut(), images.grace_hopper()
    out = []
    for i in range(start, start + n):
        base = images.side_by_side(a, g) if i % 2 == 0 else images.flip(a)
        img = base.copy()
        img[-8:, :, :] = (i * 37 % 256, i * 91 % 256, i * 53 % 256)
        out.append(img)
    return out


def _worker_processes(run_pid: int) -> tuple[psutil.Process, list[psutil.Process]]:
    for proc in psutil.Process(run_pid).children(recursive=False):
        if "celery" in " ".join(proc.cmdline()):
            return proc, proc.children(recursive=True)
    raise AssertionError("no celery worker under pipeline run")


def _counts(data_dir: Path) -> dict[str, int]:
    return dict(_rows(data_dir, "SELECT state, count(*) FROM photos GROUP BY state"))  # type: ignore[arg-type]


def test_worker_killed_and_broker_outage(tmp_path: Path, data_dir: Path, redis_server: RedisServer) -> None:
    env = {k: v for k, v in os.environ.items() if k.startswith("PIPELINE_")}
    env.update(PIPELINE_BROKER_URL=redis_server.url, PIPELINE_BATCH_SIZE="4")
    refs = tmp_path / "refs"
    cli("enroll", "--name", "Eileen", str(images.save_jpeg(images.astronaut(), refs / "e.jpg")), env=env)
    cli("enroll", "--name", "Grace", str(images.save_jpeg(images.grace_hopper(), refs / "g.jpg")), env=env)
    album = tmp_path / "album"
    album.mkdir()
    run = _start_run(album, env)
    try:
        time.sleep(3)
        # 1. Kill the worker's pool process in the middle of a batch (Celery requeues the task;
        #    the redelivered task retries the photos one by one).
        for i, img in enumerate(_variants(16)):
            images.save_jpeg(img, album / f"a{i:02d}.jpg")
        wait_for(
            lambda: _counts(data_dir).get("done", 0) >= 2 and _counts(data_dir).get("processing", 0) > 0,
            timeout=60,
            interval=0.05,
            message="a batch in progress",
        )
        main, pool = _worker_processes(run.pid)
        for child in pool:
            child.send_signal(signal.SIGKILL)
        # 2. Kill the whole worker (as if its machine died): `pipeline run` restarts it and the
        #    sweeper returns its orphaned photos to the queue.
        wait_for(
            lambda: _counts(data_dir).get("processing", 0) > 0, timeout=60, interval=0.05, message="processing again"
        )
        main, pool = _worker_processes(run.pid)
        for proc in [main, *pool]:
            proc.send_signal(signal.SIGKILL)
        # 3. Stop the broker while more photos arrive: rows are committed as queued first.
        redis_server.stop()
        for i, img in enumerate(_variants(6, start=100)):
            images.save_jpeg(img, album / f"b{i:02d}.jpg")
        wait_for(
            lambda: len(_rows(data_dir, "SELECT id FROM photos WHERE path LIKE '%/b%'")) == 6,
            timeout=30,
            message="rows for new photos",
        )
        time.sleep(2)
        redis_server.start()

        def settled() -> bool:
            counts = _counts(data_dir)
            return sum(counts.values()) == 22 and counts.get("done", 0) + counts.get("failed", 0) == 22

        wait_for(settled, timeout=150, interval=0.5, message="every photo done or failed")
    finally:
        output = _stop_run(run)
    assert "restarted" in output, output
    rows = _rows(data_dir, "SELECT path, state, error, attempts FROM photos")
    assert len(rows) == 22 and len({r[0] for r in rows}) == 22, "one row per file"
    for path, state, error, attempts in rows:
        assert state == "done" or (state == "failed" and error), (path, state, error, attempts)
    done = [r for r in rows if r[1] == "done"]
    assert len(done) >= 20, rows  # at most the photos being processed at each kill may exhaust attempts
    # No duplicated results: exactly one caption per done photo and the right number of faces.
    per_photo = _rows(
        data_dir,
        "SELECT p.path, (SELECT count(*) FROM captions c WHERE c.photo_id = p.id), "
        "(SELECT count(*) FROM faces f WHERE f.photo_id = p.id) FROM photos p WHERE p.state = 'done'",
    )
    for path, n_captions, n_faces in per_photo:
        index = int(Path(path).stem[1:])
        assert n_captions == 1, path
        assert n_faces == (2 if index % 2 == 0 else 1), (path, n_faces)


def test_dispatcher_connects_ahead_and_reports_a_dead_broker(redis_server: RedisServer) -> None:
    """`pipeline run`/`watch` open the broker connection before the first photo; a dead broker is
    reported (False, logged) instead of raising, and sending still works once connected."""
    from pipeline.broker.client import queue_length
    from pipeline.config import get_settings
    from pipeline.ingest.dispatch import Dispatcher

    live = Dispatcher(redis_server.url, get_settings())
    assert live.connect() and live.send([7, 8])
    assert queue_length(redis_server.url) == 1  # one task with both ids
    started = time.monotonic()
    assert not Dispatcher(f"redis://127.0.0.1:{free_port()}/0", get_settings()).connect()
    assert time.monotonic() - started < 10
    assert not Dispatcher(None, get_settings()).connect()
