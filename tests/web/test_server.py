"""`pipeline web` as a real server: it prints its address, serves, refuses to listen beyond
loopback without a password, and asks for that password over the network when it has one."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.conftest import PIPELINE, cli, flat


@contextmanager
def _serving(*args: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """Start ``pipeline web ARGS``; yields the base URL it printed; stops it with Ctrl-C."""
    full = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    proc = subprocess.Popen(
        [*PIPELINE, "web", *args], env=full, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"web: (http://\S+)", line)
        assert match, line + proc.stdout.read()
        yield match.group(1)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)


def test_serves_on_loopback_and_prints_its_address(data_dir: Path) -> None:
    with _serving("--port", "0") as base:
        assert base.startswith("http://127.0.0.1:")
        response = httpx.get(f"{base}/people", timeout=30)
        assert response.status_code == 200 and "Nobody is enrolled yet" in response.text
        assert response.headers["x-frame-options"] == "DENY" and "pipeline_csrf" in response.cookies


def test_refuses_other_addresses_without_a_password(data_dir: Path, tmp_path: Path) -> None:
    web = cli("web", "--host", "0.0.0.0", "--port", "0", check=False)
    assert web.returncode == 1 and "without a password" in flat(web.stderr)
    (tmp_path / "album").mkdir()
    run = cli("run", str(tmp_path / "album"), "--web", env={"PIPELINE_WEB_HOST": "0.0.0.0"}, check=False)
    assert run.returncode == 1 and "without a password" in flat(run.stderr)
    assert not (data_dir / "logs" / "worker.log").exists(), "nothing was started"


def test_a_password_is_asked_for_over_the_network(data_dir: Path) -> None:
    with _serving("--host", "0.0.0.0", "--port", "0", env={"PIPELINE_WEB_PASSWORD": "correct horse"}) as base:
        assert "(password required)" not in base
        url = base.replace("0.0.0.0", "127.0.0.1") + "/status"
        assert httpx.get(url, timeout=30).status_code == 401
        assert httpx.get(url, auth=("x", "wrong"), timeout=30).status_code == 401
        assert httpx.get(url, auth=("family", "correct horse"), timeout=30).status_code == 200
