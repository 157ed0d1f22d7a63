"""Every user mistake is one ``error:`` line with what to do, exit 1 (2 for a wrong argument),
no traceback; ``-v`` shows the traceback. Each case runs ``pipeline`` in a subprocess, as a user."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import PIPELINE, WITHOUT_TORCH


@dataclass
class Mistake:
    """One mistake: the arguments, extra environment, the exit code and words the error must have."""

    args: list[str]
    code: int
    words: str
    env: dict[str, str] = field(default_factory=dict)
    traceback_with_v: bool = True  # usage errors (exit 2) have no traceback to show


def _pipeline(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("PIPELINE_")}
    full.update(env)
    return subprocess.run([*PIPELINE, *args], env=full, cwd=cwd, capture_output=True, text=True, timeout=180)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def listening_port() -> Iterator[int]:
    """A loopback port some other program listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def _photo(folder: Path) -> Path:
    from PIL import Image

    path = folder / "photo.jpg"
    Image.new("RGB", (64, 48), (120, 80, 40)).save(path)
    return path


MISTAKES: dict[str, Callable[[Path, int], Mistake]] = {
    "database server down": lambda tmp, port: Mistake(
        ["people"],
        1,
        "cannot open the database",
        {"PIPELINE_DATABASE_URL": f"postgresql://pipeline:secret@127.0.0.1:{_closed_port()}/photos"},
    ),
    "broker down (worker)": lambda tmp, port: Mistake(
        ["worker"], 1, "does not answer", {"PIPELINE_BROKER_URL": f"redis://127.0.0.1:{_closed_port()}/0"}
    ),
    "broker down (run)": lambda tmp, port: Mistake(
        ["run", "--until-idle", str(tmp)],
        1,
        "does not answer",
        {"PIPELINE_BROKER_URL": f"redis://127.0.0.1:{_closed_port()}/0"},
    ),
    "torch missing (models check)": lambda tmp, port: Mistake(
        ["--profile", "plvm", "models", "check"], 1, "torch is not installed", WITHOUT_TORCH
    ),
    "torch missing (ask)": lambda tmp, port: Mistake(
        ["--profile", "tiny", "ask", str(_photo(tmp)), "Who is here?"], 1, "setup.sh plvm", WITHOUT_TORCH
    ),
    "bad setting": lambda tmp, port: Mistake(
        ["people"], 1, "PIPELINE_BATCH_SIZE='abc'", {"PIPELINE_BATCH_SIZE": "abc"}
    ),
    "malformed TOML": lambda tmp, port: Mistake(
        ["people"], 1, "not valid TOML", {"PIPELINE_CONFIG": str(_write(tmp / "bad.toml", "batch_size = [\n"))}
    ),
    "bad value in TOML": lambda tmp, port: Mistake(
        ["people"], 1, "batch_size in", {"PIPELINE_CONFIG": str(_write(tmp / "c.toml", "batch_size = 'many'\n"))}
    ),
    "missing TOML": lambda tmp, port: Mistake(
        ["people"], 1, "does not exist", {"PIPELINE_CONFIG": str(tmp / "no.toml")}
    ),
    "unknown profile (option)": lambda tmp, port: Mistake(
        ["--profile", "bogus", "people"], 2, "unknown profile 'bogus'", traceback_with_v=False
    ),
    "unknown profile (setting)": lambda tmp, port: Mistake(
        ["people"], 1, "'faces', 'plvm' or 'tiny'", {"PIPELINE_PROFILE": "bogus"}
    ),
    "unknown revision": lambda tmp, port: Mistake(["db", "upgrade", "bogusrev"], 1, "bogusrev"),
    "Flower port taken (flower)": lambda tmp, port: Mistake(["flower", "--port", str(port)], 1, f"port {port}"),
    "Flower port taken (run)": lambda tmp, port: Mistake(
        ["run", "--flower", "--flower-port", str(port), str(tmp)],
        1,
        "--flower-port",
        {"PIPELINE_BROKER_URL": f"redis://127.0.0.1:{_closed_port()}/0"},
    ),
    "data directory is a file": lambda tmp, port: Mistake(
        ["people"], 1, "a file is in the way", {"PIPELINE_DATA_DIR": str(_write(tmp / "afile", ""))}
    ),
    "empty SQL": lambda tmp, port: Mistake(["sql", ""], 2, "the query is empty", traceback_with_v=False),
    "sample album over a photo name": lambda tmp, port: Mistake(
        ["sample-album", str(tmp / "photos" / "cat.jpg")], 1, "looks like a photo"
    ),
}


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _assert_one_error_line(proc: subprocess.CompletedProcess[str], mistake: Mistake) -> None:
    said = f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == mistake.code, said
    assert len(errors) == 1, said
    assert mistake.words in errors[0], said
    assert "Traceback" not in proc.stderr, said


@pytest.mark.parametrize("name", list(MISTAKES))
def test_mistake_is_one_error_line(name: str, tmp_path: Path, listening_port: int) -> None:
    (tmp_path / "photos").mkdir()
    data = tmp_path / "data"
    mistake = MISTAKES[name](tmp_path, listening_port)
    env = {"PIPELINE_DATA_DIR": str(data), **mistake.env}
    before = sorted(p.name for p in tmp_path.iterdir())

    _assert_one_error_line(_pipeline(mistake.args, env, tmp_path), mistake)
    if name == "sample album over a photo name":
        assert not any((tmp_path / "photos").iterdir()), "sample-album left something behind"
    if mistake.traceback_with_v:
        verbose = _pipeline(["-v", *mistake.args], env, tmp_path)
        assert verbose.returncode == mistake.code, verbose.stderr
        assert "Traceback" in verbose.stderr, verbose.stderr
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "data") == [n for n in before if n != "data"]


def test_read_only_data_directory(tmp_path: Path) -> None:
    """A data directory on read-only media (a read-only tmpfs in a private mount namespace)."""
    unshare = shutil.which("unshare")
    if unshare is None or subprocess.run([unshare, "-m", "true"], capture_output=True).returncode != 0:
        pytest.skip("needs `unshare -m` (root or user namespaces) to mount read-only media")
    media = tmp_path / "media"
    media.mkdir()
    mistake = Mistake(["people"], 1, "read-only file system")  # both: "cannot write <place>: read-only ..."
    script = 'mount -t tmpfs -o ro tmpfs "$1" && shift && exec "$@"'
    for where in (media / "data", media):  # a data directory to be created there, and an existing one
        env = {"PIPELINE_DATA_DIR": str(where)}
        cmd = [unshare, "-m", "sh", "-c", script, "sh", str(media), *PIPELINE, *mistake.args]
        proc = subprocess.run(cmd, env={**os.environ, **env}, capture_output=True, text=True, timeout=180)
        if "mount:" in proc.stderr:
            pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
        _assert_one_error_line(proc, mistake)
