"""`pipeline config` and `pipeline status` never print a password that sits in a URL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.config import redact_url
from tests.conftest import cli


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://:s3cret@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
        ("postgresql+psycopg://reader:pw@db:5432/album", "postgresql+psycopg://reader:***@db:5432/album"),
        ("postgresql+psycopg://postgres@127.0.0.1/test", "postgresql+psycopg://postgres@127.0.0.1/test"),
        ("sqlite:////tmp/x.db", "sqlite:////tmp/x.db"),
    ],
)
def test_redact_url_hides_only_the_password(url: str, expected: str) -> None:
    assert redact_url(url) == expected


def test_config_does_not_print_passwords(data_dir: Path) -> None:
    env = {
        "PIPELINE_DATABASE_URL": "postgresql://family:db-topsecret@127.0.0.1:1/album",
        "PIPELINE_BROKER_URL": "redis://:broker-topsecret@127.0.0.1:1/0",
        "PIPELINE_SQL_DATABASE_URL": "postgresql://reader:reader-topsecret@127.0.0.1:1/album",
    }
    for args in (["config", "--json"], ["config"]):
        out = cli(*args, env=env).stdout
        assert "topsecret" not in out
    values = json.loads(cli("config", "--json", env=env).stdout)
    assert values["database_url"] == "postgresql+psycopg://family:***@127.0.0.1:1/album"
    assert values["broker_url"] == "redis://:***@127.0.0.1:1/0"
    assert values["sql_database_url"] == "postgresql://reader:***@127.0.0.1:1/album"
