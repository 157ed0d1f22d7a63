"""docker-compose.yml describes the several-machines form correctly; settings behave."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, cli


def _compose() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def test_compose_services_and_safety_settings() -> None:
    services = _compose()["services"]
    assert {"redis", "postgres", "migrate", "watcher", "worker-gpu", "flower"} <= set(services)
    assert "noeviction" in services["redis"]["command"] and services["redis"]["healthcheck"]
    assert services["postgres"]["healthcheck"]["test"][-1].startswith("pg_isready")
    assert services["migrate"]["command"] == ["pipeline", "db", "upgrade"] and services["migrate"]["restart"] == "no"
    assert any(v.endswith(":/photos:ro") for v in services["watcher"]["volumes"]), "photos mounted read-only"
    devices = services["worker-gpu"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and devices[0]["capabilities"] == ["gpu"]
    assert "FLOWER_BASIC_AUTH" in services["flower"]["environment"]
    for name in ("watcher", "worker-gpu", "web"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    web = services["web"]
    assert "PIPELINE_WEB_PASSWORD" in web["environment"], "the web app off loopback needs a password"
    assert all(port.startswith("127.0.0.1:") for port in web["ports"]), "published on the host's loopback only"


def test_compose_requires_real_passwords_and_keeps_services_private() -> None:
    compose_text = (REPO / "docker-compose.yml").read_text()
    services = _compose()["services"]
    assert all(p.startswith("127.0.0.1:") for p in services["flower"]["ports"]), "Flower on this host only"
    redis_command = services["redis"]["command"]
    assert redis_command[redis_command.index("--requirepass") + 1] == "${REDIS_PASSWORD:?set REDIS_PASSWORD}"
    assert "redis://:${REDIS_PASSWORD:?set REDIS_PASSWORD}@redis" in compose_text
    for name in ("redis", "postgres"):
        assert services[name]["depends_on"]["secrets"]["condition"] == "service_completed_successfully"
    for var in ("POSTGRES_PASSWORD", "REDIS_PASSWORD", "FLOWER_BASIC_AUTH", "PIPELINE_WEB_PASSWORD"):  # all required
        uses = re.findall(r"(?<!\$)\$\{" + var + r"(:\?)?", compose_text)  # $$ is an escaped shell variable
        assert uses and all(uses), var
    example = dict(
        line.split("=", 1)
        for line in (REPO / ".env.example").read_text().splitlines()
        if "=" in line and line[0] != "#"
    )
    for var in ("POSTGRES_PASSWORD", "REDIS_PASSWORD", "FLOWER_BASIC_AUTH", "PIPELINE_WEB_PASSWORD"):
        assert example[var] == "", var


@pytest.mark.parametrize(
    ("postgres", "redis", "flower", "starts"),
    [
        ("change-me", "0123456789abcdef0123", "admin:0123456789abcdef", False),
        ("0123456789abcdef0123", "short", "admin:0123456789abcdef", False),
        ("0123456789abcdef0123", "0123456789abcdef0123", "admin:change-me", False),
        ("0123456789abcdef0123", "fedcba98765432100123", "admin:0123456789abcdef", True),
    ],
)
def test_compose_secrets_check_refuses_example_values(postgres: str, redis: str, flower: str, starts: bool) -> None:
    """The `secrets` service's script (compose's $$ escapes undone), run by sh as compose would."""
    script = _compose()["services"]["secrets"]["command"][2].replace("$$", "$")
    env = {"POSTGRES_PASSWORD": postgres, "REDIS_PASSWORD": redis, "FLOWER_BASIC_AUTH": flower, "PATH": "/usr/bin:/bin"}
    env["PIPELINE_WEB_PASSWORD"] = "a1b2c3d4e5f6a7b8c9d0"
    proc = subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True)
    assert (proc.returncode == 0) == starts, proc.stderr
    assert starts or "refusing to start" in proc.stderr


@pytest.mark.skipif(
    shutil.which("docker-compose") is None, reason="docker-compose (the compose file parser) not installed"
)
def test_compose_config_parses(tmp_path: Path) -> None:
    def config(env_file: Path) -> subprocess.CompletedProcess[str]:
        command = ["docker-compose", "--env-file", str(env_file), "config", "-q"]
        return subprocess.run(command, cwd=REPO, capture_output=True, text=True)

    assert config(REPO / ".env.example").returncode != 0, "the example's empty passwords are refused"
    filled = tmp_path / ".env"
    filled.write_text(
        (REPO / ".env.example")
        .read_text()
        .replace("POSTGRES_PASSWORD=\n", "POSTGRES_PASSWORD=0123456789abcdef0123\n")
        .replace("REDIS_PASSWORD=\n", "REDIS_PASSWORD=fedcba98765432100123\n")
        .replace("FLOWER_BASIC_AUTH=\n", "FLOWER_BASIC_AUTH=admin:0123456789abcdef\n")
        .replace("PIPELINE_WEB_PASSWORD=\n", "PIPELINE_WEB_PASSWORD=a1b2c3d4e5f6a7b8c9d0\n")
    )
    proc = config(filled)
    assert proc.returncode == 0, proc.stderr


def test_config_command_shows_effective_values(data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config_file = tmp_path / "pipeline.toml"
    config_file.write_text('match_threshold = 0.5\nquestions = ["Who is in this photo?"]\nbatch_size = 4\n')
    import os

    env = {k: v for k, v in os.environ.items() if k.startswith("PIPELINE_")}
    env.update(PIPELINE_CONFIG=str(config_file), PIPELINE_BATCH_SIZE="16")
    values = json.loads(cli("config", "--json", env=env).stdout)
    assert values["match_threshold"] == 0.5  # from the file
    assert values["batch_size"] == 16  # the environment wins over the file
    assert values["questions"] == ["Who is in this photo?"]
    assert values["database_url"] == f"sqlite:///{data_dir / 'pipeline.db'}"
    assert values["profile"] == "faces"
