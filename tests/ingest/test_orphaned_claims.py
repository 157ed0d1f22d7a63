"""The sweeper returns photos held by dead or silent workers to the queue at once, one photo per
task, and leaves live workers' claims alone (real SQLite, real processes for the owners)."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import col, select

from pipeline.config import get_settings
from pipeline.ingest.dispatch import Dispatcher, release_orphaned_claims, sweep
from pipeline.store.claim_owner import Heartbeat, owner_is_gone, this_process
from pipeline.store.db import ensure_schema, session_scope
from pipeline.store.models import Photo, utcnow
from tests.conftest import RedisServer


def _dead_owner() -> str:
    """The owner string of a process that has exited (it printed its own identity)."""
    code = "from pipeline.store.claim_owner import this_process; print(this_process())"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def _claimed(name: str, owner: str, age_s: float, task: str = "t") -> Photo:
    return Photo(
        path=f"/album/{name}.jpg",
        sha256=name.ljust(64, "0"),
        size=1,
        mtime=0.0,
        state="processing",
        attempts=1,
        claimed_by=f"{task}-{name}",
        claimed_owner=owner,
        claimed_at=utcnow() - timedelta(seconds=age_s),
    )


@pytest.fixture
def claims(data_dir: Path) -> dict[str, int]:
    ensure_schema()
    stale = get_settings().stale_after
    rows = {
        "dead_here": _claimed("dead_here", _dead_owner(), age_s=0),
        "alive_here": _claimed("alive_here", this_process(), age_s=0),
        "remote_fresh": _claimed("remote_fresh", "another-host/1/1", age_s=0),
        "remote_silent": _claimed("remote_silent", "another-host/2/2", age_s=stale + 5),
        "pid_reused": _claimed("pid_reused", f"{socket.gethostname()}/{os.getpid()}/1", age_s=0),
    }
    with session_scope() as session:
        for row in rows.values():
            session.add(row)
        session.commit()
        return {name: int(row.id or 0) for name, row in rows.items()}


def _states() -> dict[str, tuple[str, str | None]]:
    with session_scope() as session:
        rows = session.exec(select(Photo.path, Photo.state, Photo.claimed_owner)).all()
    return {Path(p).stem: (s, o) for p, s, o in rows}


def test_owner_identity() -> None:
    assert not owner_is_gone(this_process())
    assert owner_is_gone(_dead_owner())
    assert not owner_is_gone("another-host/1/1")  # elsewhere: the heartbeat decides
    assert not owner_is_gone(None) and not owner_is_gone("not an owner")


def test_dead_and_silent_owners_are_released_live_ones_kept(claims: dict[str, int]) -> None:
    released = release_orphaned_claims(get_settings())
    assert sorted(released) == sorted(claims[n] for n in ("dead_here", "remote_silent", "pid_reused"))
    states = _states()
    for name in ("dead_here", "remote_silent", "pid_reused"):
        assert states[name] == ("queued", None), name
    for name in ("alive_here", "remote_fresh"):
        assert states[name][0] == "processing", name
    assert release_orphaned_claims(get_settings()) == []  # a second pass finds nothing new


def test_sweep_sends_each_orphan_alone(claims: dict[str, int], redis_server: RedisServer) -> None:
    import redis

    result = sweep(get_settings(), Dispatcher(redis_server.url, get_settings()))
    assert result["orphaned"] == 3
    client = redis.Redis.from_url(redis_server.url)
    bodies = [json.loads(m) for m in client.lrange("gpu", 0, -1)]
    batches = [json.loads(base64.b64decode(b["body"]))[0][0] for b in bodies]
    assert sorted(batches) == sorted([claims[n]] for n in ("dead_here", "remote_silent", "pid_reused"))


def test_heartbeat_keeps_a_live_claim_fresh(claims: dict[str, int]) -> None:
    with session_scope() as session:
        photo = session.get(Photo, claims["alive_here"])
        assert photo is not None
        photo.claimed_at = utcnow() - timedelta(seconds=get_settings().stale_after + 5)  # silent for too long
        session.add(photo)
    with Heartbeat(get_settings().db_url, interval=60) as beat:
        assert beat.beat() == 1  # this process holds one photo: its claim is refreshed
    assert claims["alive_here"] not in release_orphaned_claims(get_settings())
    with session_scope() as session:
        held = session.exec(select(col(Photo.id)).where(col(Photo.state) == "processing")).all()
    assert claims["alive_here"] in held
