"""The embedded Redis: a password nobody else can read, dies with its parent, restarted if it dies."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import psutil
import pytest
import redis

from pipeline.broker.client import resolve_broker_url
from pipeline.broker.embedded import start_embedded_redis
from pipeline.config import get_settings
from tests.conftest import wait_for

pytestmark = pytest.mark.redis


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_password_required_and_kept_private(data_dir: Path) -> None:
    server = start_embedded_redis(get_settings())
    try:
        port = int(server.url.rsplit(":", 1)[1].split("/")[0])
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=port, socket_timeout=5).ping()  # an account without the password
        client = redis.Redis.from_url(server.url, socket_timeout=5)
        assert client.ping()
        with pytest.raises(redis.ResponseError, match="unknown command"):
            client.execute_command("CONFIG", "SET", "dir", "/tmp")  # no file planting even with it
        assert _mode(data_dir / "redis") == 0o700
        for private in (data_dir / "broker.url", data_dir / "redis" / "password", data_dir / "redis" / "redis.conf"):
            assert _mode(private) == 0o600, private
        password = (data_dir / "redis" / "password").read_text().strip()
        assert len(password) >= 32 and password in (data_dir / "broker.url").read_text()
        assert not any(password in part for part in psutil.Process(server.process.pid).cmdline())  # not in `ps`
        assert resolve_broker_url(get_settings()) == server.url
    finally:
        server.stop()
    assert not (data_dir / "broker.url").exists()
    again = start_embedded_redis(get_settings())  # the same password at the next start
    try:
        assert password in again.url
    finally:
        again.stop()


def test_restarted_after_it_dies_with_its_data(data_dir: Path) -> None:
    server = start_embedded_redis(get_settings())
    try:
        client = redis.Redis.from_url(server.url, socket_timeout=5)
        client.rpush("gpu", b"a message")
        client.execute_command("BGREWRITEAOF")
        wait_for(lambda: client.info("persistence")["aof_rewrite_in_progress"] == 0, timeout=30, message="AOF")
        old_pid = server.process.pid
        assert server.check() is None
        os.kill(old_pid, signal.SIGKILL)
        server.process.wait(10)
        message = server.check()
        assert message is not None and "restarted" in message and "code -9" in message
        assert server.process.pid != old_pid
        assert client.lrange("gpu", 0, -1) == [b"a message"]  # same URL, same data
        # Dying again and again: restarted, but with a growing pause (no restart storm).
        os.kill(server.process.pid, signal.SIGKILL)
        server.process.wait(10)
        assert "restart 2" in (server.check() or "")  # a second quick death: restarted at once
        os.kill(server.process.pid, signal.SIGKILL)
        server.process.wait(10)
        assert server.check() is None, "a third quick death waits a little"
        messages: list[str] = []
        wait_for(lambda: bool(messages.append(server.check() or "") or messages[-1]), timeout=60, message="restart")
        assert "restart 3" in messages[-1] and client.ping()
    finally:
        server.stop()


def test_dies_with_its_parent_on_sigkill(data_dir: Path) -> None:
    """kill -9 of the process that started it (as of `pipeline run`): the redis-server goes too."""
    script = textwrap.dedent(
        """
        import sys, time
        from pipeline.broker.embedded import start_embedded_redis
        from pipeline.config import get_settings
        server = start_embedded_redis(get_settings())
        print(server.process.pid, flush=True)
        time.sleep(600)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=dict(os.environ))
    try:
        assert parent.stdout is not None
        redis_pid = int(parent.stdout.readline())
        assert psutil.pid_exists(redis_pid)
        parent.kill()
        parent.wait(10)

        def gone() -> bool:
            try:
                return psutil.Process(redis_pid).status() == psutil.STATUS_ZOMBIE
            except psutil.NoSuchProcess:
                return True

        wait_for(gone, timeout=30, message="the orphaned redis-server to exit")
    finally:
        if parent.poll() is None:
            parent.kill()
