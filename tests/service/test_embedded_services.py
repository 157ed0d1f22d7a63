"""The embedded services as a local attacker or a crash would meet them: `pipeline run` restarts
a killed redis-server and every photo still gets done once; kill -9 of `pipeline run` leaves no
redis-server behind; Flower asks for a login, generated once, and listens on loopback only."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import threading
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest
from sqlalchemy import text

from tests import images
from tests.conftest import PIPELINE, RedisServer, free_port, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.redis]


class Spawned:
    """A `pipeline ...` process whose output is collected line by line in the background."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [*PIPELINE, *args],
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _redis_servers(pid: int) -> list[psutil.Process]:
    return [p for p in psutil.Process(pid).children(recursive=True) if "redis-server" in p.name()]


def _states(data_dir: Path) -> dict[str, str]:
    from pipeline.store.db import make_engine

    engine = make_engine(f"sqlite:///{data_dir / 'pipeline.db'}", read_only=True)
    try:
        with engine.connect() as conn:
            return {Path(p).name: s for p, s in conn.execute(text("SELECT path, state FROM photos"))}
    finally:
        engine.dispose()


def _gone(process: psutil.Process) -> bool:
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.fixture
def env(data_dir: Path) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith("PIPELINE_")}


def test_killed_redis_is_restarted_and_nothing_is_lost(tmp_path: Path, env: dict[str, str], data_dir: Path) -> None:
    album = tmp_path / "album"
    album.mkdir()
    run = Spawned(["run", str(album)], env)
    try:
        wait_for(lambda: "watching" in run.output, timeout=120, message=f"pipeline run started:\n{run.output}")
        images.save_jpeg(images.astronaut(), album / "before.jpg")
        wait_for(lambda: _states(data_dir).get("before.jpg") == "done", timeout=120, message="first photo")
        (server,) = _redis_servers(run.process.pid)
        server.kill()  # SIGKILL: no chance to save anything
        wait_for(lambda: "embedded Redis exited" in run.output, timeout=30, message=f"restart said:\n{run.output}")
        assert "restarted" in run.output
        images.save_jpeg(images.grace_hopper(), album / "after.jpg")
        images.save_jpeg(images.side_by_side(images.astronaut(), images.grace_hopper()), album / "pair.jpg")
        wait_for(
            lambda: _states(data_dir) == {"before.jpg": "done", "after.jpg": "done", "pair.jpg": "done"},
            timeout=180,
            message=f"every photo done after the broker came back:\n{run.output}",
        )
        (restarted,) = _redis_servers(run.process.pid)
        assert restarted.pid != server.pid
    finally:
        run.stop()
    assert run.process.returncode == 0, run.output
    assert not _redis_servers_left(data_dir)


def _redis_servers_left(data_dir: Path) -> list[psutil.Process]:
    """redis-server processes working in this data directory (redis chdirs to its ``dir``),
    wherever their parent is."""
    folder = str(data_dir / "redis")
    found = []
    for process in psutil.process_iter(["name"]):
        try:
            if "redis-server" in (process.info["name"] or "") and process.cwd() == folder and not _gone(process):
                found.append(process)
        except psutil.Error:
            continue
    return found


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGHUP], ids=["kill-9", "terminal-closed"])
def test_no_redis_outlives_pipeline_run(tmp_path: Path, env: dict[str, str], data_dir: Path, sig: int) -> None:
    album = tmp_path / "album"
    album.mkdir()
    run = Spawned(["run", str(album)], env)
    try:
        wait_for(lambda: "watching" in run.output, timeout=120, message=f"pipeline run started:\n{run.output}")
        password = (data_dir / "redis" / "password").read_text().strip()
        assert "redis://:***@127.0.0.1" in run.output and password not in run.output  # shown redacted
        children = psutil.Process(run.process.pid).children(recursive=True)
        assert _redis_servers_left(data_dir)
        run.process.send_signal(sig)
        code = run.process.wait(90)
        if sig == signal.SIGHUP:  # a clean stop, in order
            assert code == 0, run.output
            assert not (data_dir / "broker.url").exists()
        wait_for(lambda: not _redis_servers_left(data_dir), timeout=60, message="redis-server gone with its parent")
        wait_for(lambda: all(_gone(c) for c in children), timeout=90, message="every child gone")
    finally:
        run.stop()


def _get(url: str, auth: str | None) -> int:
    request = urllib.request.Request(url)
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def test_flower_asks_for_a_generated_login_on_loopback(
    tmp_path: Path, env: dict[str, str], data_dir: Path, redis_server: RedisServer
) -> None:
    env = {**env, "PIPELINE_BROKER_URL": redis_server.url}
    port = free_port()
    flower = Spawned(["flower", "--port", str(port)], env)
    try:
        wait_for(lambda: "password" in flower.output, timeout=60, message=f"login printed:\n{flower.output}")
        stored = (data_dir / "flower.auth").read_text().strip()
        user, password = stored.split(":", 1)
        assert f"user {user}, password {password}" in flower.output and len(password) >= 20
        assert oct((data_dir / "flower.auth").stat().st_mode & 0o777) == "0o600"
        wait_for(lambda: _get(f"http://127.0.0.1:{port}/", None) == 401, timeout=90, message="flower answers")
        assert _get(f"http://127.0.0.1:{port}/", f"{user}:wrong") == 401
        assert _get(f"http://127.0.0.1:{port}/", stored) == 200
        listening = {c.laddr.ip for c in psutil.Process(flower.process.pid).net_connections() if c.status == "LISTEN"}
        assert listening == {"127.0.0.1"}
        assert password not in " ".join(psutil.Process(flower.process.pid).cmdline())  # not visible in `ps`
    finally:
        flower.stop()
    again = Spawned(["flower", "--port", str(free_port())], env)  # the same login, not printed again
    try:
        wait_for(lambda: "password in" in again.output, timeout=60, message=f"second start:\n{again.output}")
        assert password not in again.output
    finally:
        again.stop()
