"""Fixtures for the store tests: an empty database at head on each dialect."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from pipeline.store import db


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A database upgraded to head: a SQLite file, then the local PostgreSQL test database."""
    url = (
        f"sqlite:///{tmp_path / 'search.db'}" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    )
    db.upgrade(url)
    engine = db.make_engine(url)
    yield engine
    engine.dispose()
