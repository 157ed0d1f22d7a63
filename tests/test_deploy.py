"""docker-compose.yml describes the several-machines form correctly; settings behave."""

from __future__ import annotations

import json
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


@pytest.mark.skipif(
    shutil.which("docker-compose") is None, reason="docker-compose (the compose file parser) not installed"
)
def test_compose_config_parses() -> None:
    proc = subprocess.run(
        ["docker-compose", "--env-file", str(REPO / ".env.example"), "config", "-q"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
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
