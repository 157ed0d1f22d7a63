"""A real tagged album for the web tests: the sample album, its two people enrolled, every photo
tagged in-process by the faces profile (real YuNet/SFace), on SQLite in a temporary data dir."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from pipeline.config import Settings
from tests.conftest import FAST_ENV


@dataclass
class Album:
    data_dir: Path
    folder: Path
    photo_ids: dict[str, int]
    settings: Settings


def tag_all(settings: Settings, ids: list[int]) -> None:
    """Run the worker's code on ``ids`` in this process (what a Celery task would do)."""
    from pipeline.tagging.batch import process_photos

    process_photos(ids, "web-test", settings)


def build_album(root: Path, monkeypatch: pytest.MonkeyPatch) -> Album:
    from pipeline.config import get_settings
    from pipeline.datasets.sample_album import build_sample_album
    from pipeline.ingest.ingestor import Ingestor
    from pipeline.people.enrolment import enroll
    from pipeline.store.db import session_scope, upgrade

    data_dir = root / "data"
    for key, value in {"PIPELINE_DATA_DIR": str(data_dir), **FAST_ENV}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("PIPELINE_DATABASE_URL", raising=False)
    monkeypatch.delenv("PIPELINE_BROKER_URL", raising=False)
    monkeypatch.delenv("PIPELINE_WEB_PASSWORD", raising=False)
    get_settings.cache_clear()
    settings = get_settings()
    upgrade()
    folder = root / "album"
    refs = build_sample_album(folder, root / "refs")
    with session_scope() as session:
        for name, ref in refs.items():
            enroll(session, settings, name, [ref])
    ingestor = Ingestor(sender=None)
    ids = {p.name: ingestor.file_ready(p) for p in sorted(folder.iterdir())}
    tag_all(settings, [i for i in ids.values() if i is not None])
    return Album(data_dir, folder, {k: v for k, v in ids.items() if v is not None}, settings)


def client_for(album: Album, **headers: str) -> TestClient:
    """A test client on the album's app (``headers`` are sent with every request)."""
    from pipeline.web.app import create_app

    return TestClient(create_app(album.settings), headers=headers)


def teardown_engines() -> None:
    from pipeline.config import get_settings
    from pipeline.store.db import dispose_engines

    dispose_engines()
    get_settings.cache_clear()


@pytest.fixture(scope="module")
def shared_album(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Album]:
    """One tagged album for tests that only read (built once per module)."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        yield build_album(tmp_path_factory.mktemp("web-album"), monkeypatch)
        teardown_engines()


@pytest.fixture
def album(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Album]:
    """A fresh tagged album for a test that changes things."""
    yield build_album(tmp_path, monkeypatch)
    teardown_engines()
