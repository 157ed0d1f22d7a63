"""``pipeline run``: broker, worker, watcher, sweeper and progress in one supervised command.

Lifecycle: take the data directory's run lock (a second ``pipeline run`` on the same data
directory is refused with the holder's pid), upgrade the database, start the embedded Redis
unless a broker URL is configured, start a Celery worker process (restarted if it dies) and
optionally Flower, then watch the folders. Ctrl-C (SIGINT) or SIGTERM stops everything in order:
watcher, dispatcher, sweeper, worker (warm shutdown), Flower, Redis. A SQLite file deleted or
replaced while running stops everything the same way, with an error
(:mod:`pipeline.store.db_file`).
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from pipeline.broker.child_process import die_with_parent
from pipeline.broker.contract import QUEUE
from pipeline.config import Settings, redact_url
from pipeline.errors import PipelineError
from pipeline.service.ports import ensure_port_free

log = logging.getLogger(__name__)


class RunError(PipelineError, RuntimeError):
    """``pipeline run`` cannot start; the message says why and what to do."""


@dataclass
class RunLock:
    path: Path
    handle: IO[str]

    def release(self) -> None:
        try:
            fcntl.flock(self.handle, fcntl.LOCK_UN)
        finally:
            self.handle.close()


def acquire_run_lock(settings: Settings) -> RunLock:
    """Exclusive lock on ``<data_dir>/run.lock``; raises RunError naming the holder if taken."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    path = settings.data_dir / "run.lock"
    handle = open(path, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise RunError(
            f"another `pipeline run` (pid {holder}) is already using {settings.data_dir}; "
            "stop it first (Ctrl-C in its terminal), or use `pipeline status` to watch it"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return RunLock(path, handle)


def child_env(settings: Settings, broker_url: str) -> dict[str, str]:
    """Environment for worker/Flower children: the effective settings that matter to them."""
    env = dict(os.environ)
    env.update(
        PIPELINE_DATA_DIR=str(settings.data_dir),
        PIPELINE_DATABASE_URL=settings.db_url,
        PIPELINE_BROKER_URL=broker_url,
        PIPELINE_PROFILE=settings.profile,
        PYTORCH_NVML_BASED_CUDA_CHECK="1",
    )
    if settings.tiny_bundle:
        env["PIPELINE_TINY_BUNDLE"] = str(settings.tiny_bundle)
    return env


def worker_command(name: str, extra: list[str] | None = None, pool: str = "prefork") -> list[str]:
    """The Celery worker command line with the pipeline's defaults (extra flags appended)."""
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "workers.celery_app",
        "worker",
        "-Q",
        QUEUE,
        "-P",
        pool,
        "-c",
        "1",
        "--prefetch-multiplier",
        "1",
        "-E",
        "-l",
        "INFO",
        "-n",
        name,
        "--without-mingle",
        "--without-gossip",
        *(extra or []),
    ]


def web_command(host: str, port: int) -> list[str]:
    """``pipeline web`` as a child of ``pipeline run --web`` (same interpreter, same settings)."""
    return [sys.executable, "-m", "pipeline", "web", "--host", host, "--port", str(port)]


def flower_command(port: int, extra: list[str] | None = None, address: str = "127.0.0.1") -> list[str]:
    """Flower's command line (credentials go in its environment: :func:`flower_env`)."""
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "workers.celery_app",
        "flower",
        f"--port={port}",
        f"--address={address}",
        *(extra or []),
    ]


def flower_env(settings: Settings, env: dict[str, str]) -> tuple[dict[str, str], str]:
    """``env`` plus Flower's basic auth (generated once, stored 0600); and what to tell the user."""
    from pipeline.broker.flower_auth import flower_credentials

    credentials = flower_credentials(settings)
    return {**env, "FLOWER_BASIC_AUTH": credentials.basic_auth}, credentials.describe()


RESTART_STABLE_S = 60.0
"""A child that ran this long before it died is restarted at once (its backoff starts over)."""
RESTART_BACKOFF_MAX_S = 60.0
RESTART_GIVE_UP = 5
"""After this many deaths in a row, each within ``RESTART_STABLE_S`` of its start, a child is not
restarted again: ``pipeline run`` stops and says why (:class:`ChildCrashLoop`)."""


class ChildCrashLoop(RunError):
    """A supervised child keeps dying right after its start; restarting it again would not help."""


def _last_line(path: Path) -> str:
    """The last non-empty line of a log file (at most its last 4 KiB are read), or ''."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 4096))
            lines = [line.strip() for line in f.read().decode("utf-8", "replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1] if lines else ""


@dataclass
class Child:
    """A supervised child process with its log file."""

    name: str
    command: list[str]
    env: dict[str, str]
    log_path: Path
    restart: bool = True
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    backoff_s: float = 0.0  # the wait before the pending restart (0: at once)
    started_at: float = 0.0
    restart_at: float | None = None  # when a dead child is due to start again
    quick_deaths: int = 0  # deaths in a row, each soon after its start
    give_up_after: int = RESTART_GIVE_UP

    def start(self) -> None:
        self.started_at = time.monotonic()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log_file = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            self.command,
            env=self.env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
        )
        log_file.close()

    def check(self) -> str | None:
        """Restart a dead child, with backoff: at once if it had run for ``RESTART_STABLE_S``,
        else after 1, 2, 4 ... ``RESTART_BACKOFF_MAX_S`` seconds (a child that keeps crashing,
        e.g. on a full disk, is not restarted in a tight loop). Returns a message when it died
        or was restarted. Raises :class:`ChildCrashLoop` after ``give_up_after`` quick deaths in
        a row, with the last line of its log."""
        if self.process is None or self.process.poll() is None or not self.restart:
            return None
        now = time.monotonic()
        if self.restart_at is None:  # just found dead
            quick = now - self.started_at < RESTART_STABLE_S
            self.quick_deaths = self.quick_deaths + 1 if quick else 0
            if self.quick_deaths >= self.give_up_after:
                last = _last_line(self.log_path)
                raise ChildCrashLoop(
                    f"{self.name} died {self.quick_deaths} times in a row within {RESTART_STABLE_S:.0f} s of its "
                    f"start (last exit code {self.process.returncode}); not restarting it. "
                    f"Its log {self.log_path} ends: {last or '(empty)'}"
                )
            self.backoff_s = min(RESTART_BACKOFF_MAX_S, max(1.0, 2 * self.backoff_s)) if quick else 0.0
            self.restart_at = now + self.backoff_s
            if self.backoff_s:
                died = f"{self.name} exited with code {self.process.returncode}"
                return f"{died} soon after its start; restarting in {self.backoff_s:.0f} s (see {self.log_path})"
        if now < self.restart_at:
            return None
        self.restart_at = None
        code = self.process.returncode
        self.restarts += 1
        self.start()
        if self.backoff_s:
            return f"{self.name} restarted"
        return f"{self.name} exited with code {code}; restarted (see {self.log_path})"

    def stop(self, timeout: float) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@dataclass
class RunOptions:
    folders: list[Path]
    flower: bool = False
    flower_port: int = 5555
    flower_args: list[str] = field(default_factory=list)
    worker_args: list[str] = field(default_factory=list)
    until_idle: bool = False
    idle_seconds: float = 3.0
    web: bool = False
    web_host: str = "127.0.0.1"
    web_port: int = 8765


def run(settings: Settings, options: RunOptions, report: Callable[[str], None]) -> int:
    """Run until stopped (or until idle with ``until_idle``). Returns an exit code."""
    from pipeline.broker.client import broker_reachable
    from pipeline.broker.embedded import start_embedded_redis
    from pipeline.ingest.dispatch import Dispatcher, Sweeper, send_all_queued
    from pipeline.ingest.ingestor import Ingestor, make_watcher
    from pipeline.service.progress import ProgressReporter
    from pipeline.service.storage_notice import StorageNotice
    from pipeline.store.db import ensure_schema
    from pipeline.store.db_file import check_database_file

    for folder in options.folders:
        if not folder.is_dir():
            raise RunError(f"{folder}: not a folder")
    if options.flower:
        ensure_port_free(options.flower_port, settings.flower_address)
    lock = acquire_run_lock(settings)
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    embedded = None
    children: list[Child] = []
    watcher = dispatcher = sweeper = None
    try:
        ensure_schema(settings.db_url)
        if settings.broker_url:
            if not broker_reachable(settings.broker_url):
                raise RunError(
                    f"the broker {settings.broker_url} does not answer; start it or unset PIPELINE_BROKER_URL"
                )
            broker_url = settings.broker_url
        else:
            embedded = start_embedded_redis(settings)
            broker_url = embedded.url
        report(
            f"broker: {redact_url(broker_url)}{' (embedded)' if embedded else ''}; "
            f"database: {redact_url(settings.db_url)}; profile: {settings.profile}"
        )
        env = child_env(settings, broker_url)
        logs = settings.data_dir / "logs"
        children.append(
            Child("worker", worker_command(f"pipeline-{os.getpid()}@%h", options.worker_args), env, logs / "worker.log")
        )
        if options.flower:
            command = flower_command(options.flower_port, options.flower_args, settings.flower_address)
            flower_environment, login = flower_env(settings, env)
            children.append(Child("flower", command, flower_environment, logs / "flower.log"))
            report(f"flower: http://{settings.flower_address}:{options.flower_port} ({login})")
        if options.web:
            web_env = {**env, "PIPELINE_FLOWER_URL": f"http://127.0.0.1:{options.flower_port}"}
            children.append(Child("web", web_command(options.web_host, options.web_port), web_env, logs / "web.log"))
            shown = f"[{options.web_host}]" if ":" in options.web_host else options.web_host
            report(f"web: http://{shown}:{options.web_port}")
        for child in children:
            child.start()
        dispatcher = Dispatcher(broker_url, settings)
        dispatcher.connect()
        sent = send_all_queued(settings, dispatcher, settings.db_url)
        if sent:
            report(f"re-sent {sent} photo(s) left queued by an earlier run")
        ingestor = Ingestor(dispatcher, settings.db_url)
        watcher = make_watcher(options.folders, ingestor, settings)
        watcher.start()
        sweeper = Sweeper(settings, dispatcher, settings.db_url, deferred=ingestor)
        sweeper.start()
        report("watching " + ", ".join(str(f) for f in options.folders) + " (Ctrl-C to stop)")
        progress = ProgressReporter(settings.db_url, report)
        storage = StorageNotice(settings.data_dir, report)
        idle_since: float | None = None
        while not stop.wait(0.5):
            check_database_file(settings.db_url)  # deleted or replaced: stop with an error line
            storage.poll()
            restarted = embedded.check() if embedded is not None else None
            if restarted:
                report(restarted)
            for child in children:
                message = child.check()
                if message:
                    report(message)
            busy = progress.poll()
            if options.until_idle:
                if not busy and watcher.is_idle() and not ingestor.deferred:
                    idle_since = idle_since or time.monotonic()
                    if time.monotonic() - idle_since >= options.idle_seconds:
                        break
                else:
                    idle_since = None
        check_database_file(settings.db_url)
        progress.poll()
        report(progress.summary())
        return 0
    finally:
        report("stopping ...")
        if watcher is not None:
            watcher.stop()
        if dispatcher is not None:
            dispatcher.close()
        if sweeper is not None:
            sweeper.stop()
        for child in reversed(children):
            child.stop(timeout=30)
        if embedded is not None:
            embedded.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        lock.release()
