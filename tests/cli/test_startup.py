"""The CLI starts at once: help imports none of the heavy libraries, and importing the Celery app
opens no connection."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = (
    "numpy",
    "sqlalchemy",
    "sqlmodel",
    "cv2",
    "torch",
    "transformers",
    "celery",
    "kombu",
    "redis",
    "PIL",
    "scipy",
    "fastapi",
    "starlette",
    "uvicorn",
    "jinja2",
)

# Runs the CLI's entry point in a fresh interpreter, then reports which heavy modules it loaded.
PROBE = """
import json, sys
args, heavy = json.loads(sys.argv[1]), json.loads(sys.argv[2])
sys.argv = ["pipeline", *args]
from pipeline.cli.main import main
code = 0
try:
    main()
except SystemExit as exit:
    code = exit.code
print(json.dumps({"code": code, "loaded": [m for m in heavy if m in sys.modules]}), file=sys.stderr)
"""


def _help_imports(args: list[str]) -> dict[str, object]:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(args), json.dumps(HEAVY)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    result: dict[str, object] = json.loads(proc.stderr.strip().splitlines()[-1])
    assert "Usage" in proc.stdout, proc.stdout + proc.stderr
    return result


def _commands() -> list[list[str]]:
    from typer.main import get_command

    from pipeline.cli.main import app

    group = get_command(app)
    commands: list[list[str]] = [[]]
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        commands.append([name])
        for sub in getattr(command, "commands", {}):
            commands.append([name, sub])
    return commands


@pytest.mark.parametrize("command", _commands(), ids=lambda c: " ".join(c) or "pipeline")
def test_help_imports_no_heavy_module(command: list[str]) -> None:
    result = _help_imports([*command, "--help"])
    assert result["code"] == 0
    assert result["loaded"] == [], f"`pipeline {' '.join(command)} --help` imported {result['loaded']}"


def test_importing_the_celery_app_opens_no_connection(tmp_path: Path) -> None:
    code = (
        "import socket\n"
        "def refuse(*args, **kwargs):\n"
        "    raise AssertionError('connection attempted at import time')\n"
        "socket.socket.connect = refuse\n"
        "socket.create_connection = refuse\n"
        "import workers.celery_app, workers.tasks\n"
        "print('imported')\n"
    )
    (tmp_path / "broker.url").write_text("redis://127.0.0.1:9/0")  # a running `pipeline run` would be pinged
    env = {"PIPELINE_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "imported"
