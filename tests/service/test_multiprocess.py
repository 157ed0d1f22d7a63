"""The several-machines form on one host: PostgreSQL, an external Redis, `pipeline watch`,
`pipeline worker` and `pipeline flower` as separate processes (what docker-compose.yml runs)."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text

from tests import images
from tests.conftest import PIPELINE, RedisServer, cli, free_port, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    handle = open(log, "wb")
    return subprocess.Popen([*PIPELINE, *args], env={**os.environ, **env}, stdout=handle, stderr=subprocess.STDOUT)


def _get(url: str, auth: str | None) -> tuple[int, bytes]:
    request = urllib.request.Request(url)
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""


def test_watch_worker_flower_on_postgres(
    tmp_path: Path, data_dir: Path, postgres_url: str, redis_server: RedisServer
) -> None:
    env = {k: v for k, v in os.environ.items() if k.startswith("PIPELINE_")}
    env.update(PIPELINE_DATABASE_URL=postgres_url, PIPELINE_BROKER_URL=redis_server.url)
    cli("db", "upgrade", env=env)
    cli("db", "readonly-role", "--name", f"reader_{make_url(postgres_url).database}", env=env)  # for `pipeline sql`
    cli("enroll", "--name", "Eileen", str(images.save_jpeg(images.astronaut(), tmp_path / "e.jpg")), env=env)
    cli("enroll", "--name", "Grace", str(images.save_jpeg(images.grace_hopper(), tmp_path / "g.jpg")), env=env)
    album = tmp_path / "album"
    album.mkdir()
    port = free_port()
    procs = [
        _spawn(["worker", "--max-tasks-per-child", "100"], env, tmp_path / "worker.log"),
        _spawn(["watch", str(album)], env, tmp_path / "watch.log"),
        _spawn(["flower", "--port", str(port), "--basic-auth=admin:secret"], env, tmp_path / "flower.log"),
    ]
    try:
        images.save_jpeg(images.side_by_side(images.astronaut(), images.grace_hopper()), album / "pair.jpg")
        images.save_jpeg(images.flip(images.grace_hopper()), album / "grace.jpg")
        (album / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
        engine = create_engine(postgres_url)

        def states() -> dict[str, str]:
            with engine.connect() as conn:
                return {Path(p).name: s for p, s in conn.execute(text("SELECT path, state FROM photos"))}

        wait_for(
            lambda: states() == {"pair.jpg": "done", "grace.jpg": "done", "broken.jpg": "failed"},
            timeout=90,
            message="photos processed",
        )
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT photo_path, person_name FROM photo_people ORDER BY photo_path, box_x")
            ).all()
        engine.dispose()
        assert [(Path(p).name, n) for p, n in rows] == [
            ("grace.jpg", "Grace"),
            ("pair.jpg", "Eileen"),
            ("pair.jpg", "Grace"),
        ]
        found = json.loads(cli("search", "--json", "Eileen Grace", env=env).stdout)
        assert [Path(h["path"]).name for h in found] == ["pair.jpg"]
        assert "read-only" in cli("sql", "DELETE FROM photos", env=env, check=False).stderr
        assert cli("sql", "--csv", "SELECT count(*) AS n FROM photos", env=env).stdout.split() == ["n", "3"]

        # Flower sees the worker's task events and asks for the password.
        wait_for(lambda: _get(f"http://127.0.0.1:{port}/", None)[0] == 401, timeout=30, message="flower up")
        assert _get(f"http://127.0.0.1:{port}/", "admin:wrong")[0] == 401

        def flower_tasks() -> dict:  # type: ignore[type-arg]
            status, body = _get(f"http://127.0.0.1:{port}/api/tasks", "admin:secret")
            return json.loads(body) if status == 200 else {}

        wait_for(
            lambda: any(t.get("name") == "workers.tasks.tag_photos" for t in flower_tasks().values()),
            timeout=30,
            message="tag_photos tasks visible in Flower",
        )
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
    time.sleep(0.2)
    assert all(p.returncode is not None for p in procs)
    # the pool child loaded the models at start, before its first photo
    assert "models loaded ahead of the first photo" in (tmp_path / "worker.log").read_text()
