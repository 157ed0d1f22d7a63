"""The Search page's one merged stream (pipeline/web/search_stream.py) on SQLite and PostgreSQL:
name and caption matches newest first by (photo second, photo id), each photo once across all
pages, older then newer giving the same pages back, photos arriving between page loads neither
repeated nor lost on the older side, a bad cursor a 400 with a message.

The album is built row by row so that the two sides disagree inside a second: several photos
share each second, their fractional mtimes run against their ids (the faces' order) and their
captions are written in photo order (the captions' order, by caption id, is then the reverse
of the stream's too)."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from pipeline.config import Settings
from pipeline.store.db import get_engine
from pipeline.store.models import Caption, Face, Person, Photo

PHOTO = re.compile(r'<a href="/photos/(\d+)"><img')
OLDER = re.compile(r'<a href="(/search\?[^"]+)" rel="next">')
NEWER = re.compile(r'<a href="(/search\?[^"]+)" rel="prev">')
BASE = 1_700_000_000
PAGE = 3


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request: pytest.FixtureRequest, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    from pipeline.config import get_settings
    from pipeline.store.db import ensure_schema

    if request.param == "postgres":
        monkeypatch.setenv("PIPELINE_DATABASE_URL", request.getfixturevalue("postgres_url"))
    get_settings.cache_clear()
    found = get_settings()
    found.web_page_size = PAGE
    ensure_schema(found.db_url)
    yield found


def _add(settings: Settings, photos: list[tuple[float, datetime | None, bool, list[str]]]) -> list[int]:
    """Photos (mtime, taken_at, a face named Ann, caption texts) -> their ids (captions written in
    photo order: within a second, caption ids ascend with photo ids, the stream's reverse)."""
    with Session(get_engine(settings.db_url)) as session:
        ann = session.query(Person).filter_by(name_key="ann").one_or_none()
        if ann is None:
            ann = Person(name="Ann", name_key="ann")
            session.add(ann)
            session.flush()
        rows = [
            Photo(path=f"/a/{mtime}-{n}.jpg", sha256=f"{n:064x}", size=1, mtime=mtime, taken_at=taken, state="done")
            for n, (mtime, taken, _, _) in enumerate(photos, start=session.query(Photo).count())
        ]
        session.add_all(rows)
        session.flush()
        for row, (_, _, named, _) in zip(rows, photos, strict=True):
            for idx in range(2 if named and row.id is not None and row.id % 5 == 0 else 1 if named else 0):
                # some photos have two faces named Ann: still one photo
                session.add(
                    Face(photo_id=row.id, idx=idx, x=0, y=0, w=0.1, h=0.1, det_score=1, embedding=b"", person_id=ann.id)
                )
        for row, (_, _, _, texts) in zip(rows, photos, strict=True):
            for version, caption in enumerate(texts):
                session.add(Caption(photo_id=row.id, text=caption, profile="faces", model_version=f"v{version}"))
        session.commit()
        return [int(r.id or 0) for r in rows]


def _album(settings: Settings) -> dict[int, int]:
    """About 40 photos, six to a second, found by name, by caption, or both: photo id -> second."""
    photos: list[tuple[float, datetime | None, bool, list[str]]] = []
    for n in range(44):
        mtime = BASE + n // 6 + 0.9 - 0.15 * (n % 6)  # within a second: newer mtime, smaller id
        taken = datetime.fromtimestamp(BASE + 3 + n // 6, UTC) if n % 7 == 3 else None
        named = n % 3 != 1
        texts = ["Ann on the beach"] if n % 3 != 0 else ["a dog on the beach"]
        if n % 6 == 2:
            texts.append("Ann with a dog")  # a second caption (another model version), found again
        photos.append((mtime, taken, named, texts))
    ids = _add(settings, photos)
    found = {}
    for photo_id, (mtime, taken, named, texts) in zip(ids, photos, strict=True):
        if named or any("Ann" in t for t in texts):
            found[photo_id] = math.floor(taken.timestamp() if taken else mtime)
    return found


def _newest_first(found: dict[int, int]) -> list[int]:
    return sorted(found, key=lambda i: (found[i], i), reverse=True)


def _get(client: TestClient, url: str) -> tuple[list[int], str | None, str | None]:
    response = client.get(url.replace("&amp;", "&"))
    assert response.status_code == 200, response.text
    older, newer = OLDER.search(response.text), NEWER.search(response.text)
    ids = [int(i) for i in PHOTO.findall(response.text)]
    return ids, older.group(1) if older else None, newer.group(1) if newer else None


def _walk_older(client: TestClient, url: str | None) -> list[list[int]]:
    """Photo ids per page from ``url``, following "older" to the end."""
    pages = []
    while url is not None and len(pages) < 100:
        ids, url, _ = _get(client, url)
        pages.append(ids)
    return pages


def _client(settings: Settings) -> TestClient:
    from pipeline.web.app import create_app

    return TestClient(create_app(settings))


def test_one_stream_each_photo_once_newest_first(settings: Settings) -> None:
    found = _album(settings)
    client = _client(settings)
    pages = _walk_older(client, "/search?q=ann")
    flat = [i for p in pages for i in p]
    assert flat == _newest_first(found)  # every match once, by (second, id) newest first
    assert all(len(p) == PAGE for p in pages[:-1]) and 1 <= len(pages[-1]) <= PAGE
    both = [i for i in found if i % 5 == 0]
    assert both and all(flat.count(i) == 1 for i in both)  # two faces, or name and caption: once

    numbered = [_get(client, f"/search?q=ann&page={k}")[0] for k in range(1, len(pages) + 1)]
    assert numbered == pages  # ?page=K links land on the same pages
    past = client.get(f"/search?q=ann&page={len(pages) + 1}")
    assert past.status_code == 200 and "no page" in past.text


def test_older_then_newer_gives_the_same_pages(settings: Settings) -> None:
    _album(settings)
    client = _client(settings)
    forward: list[list[int]] = []
    url: str | None = "/search?q=ann"
    last = ""
    while url is not None:
        last = url
        ids, url, _ = _get(client, url)
        forward.append(ids)
    back: list[list[int]] = []
    ids, _, newer = _get(client, last)
    while newer is not None:
        ids, _, newer = _get(client, newer)
        back.append(ids)
    assert back == forward[-2::-1]  # every page before the last, in reverse
    assert "page 1" in client.get("/search?q=ann").text or len(forward) == 1


def test_photos_arriving_between_pages_cause_no_repeat_or_gap(settings: Settings) -> None:
    found = _album(settings)
    client = _client(settings)
    first, older, _ = _get(client, "/search?q=ann")
    assert older is not None
    cursor_second = found[first[-1]]
    arriving = [
        (BASE + 100.5, None, True, ["Ann again"]),  # newest of all: belongs before page 1
        (cursor_second + 0.99, None, True, []),  # the cursor's own second, a larger id: newer than it
        (BASE - 50.25, None, False, ["Ann long ago"]),  # an old photo found late: older than the cursor
    ]
    new_ids = _add(settings, arriving)
    pages = [first, *_walk_older(client, older)]
    flat = [i for p in pages for i in p]
    assert len(flat) == len(set(flat))  # nothing twice
    assert set(found) <= set(flat)  # nothing that was there is lost
    assert new_ids[2] in flat and new_ids[0] not in flat and new_ids[1] not in flat
    newest = _get(client, "/search?q=ann")[0]
    assert newest[0] == new_ids[0]


@pytest.mark.parametrize("bad", ["x1", "n123", "p1.", "p99999999999.1", "p1.2.3", "p-1.2"])
def test_a_bad_cursor_is_a_400_with_a_message(settings: Settings, bad: str) -> None:
    _album(settings)
    client = _client(settings)
    for way in ("after", "before"):
        response = client.get("/search", params={"q": "ann", way: bad})
        assert response.status_code == 400
        assert "is not a search cursor" in response.text and "Traceback" not in response.text
        assert 'name="q" value="ann"' in response.text
    both = client.get("/search", params={"q": "ann", "after": "p1.2", "before": "p3.4"})
    assert both.status_code == 400 and "not both" in both.text
    deep = client.get("/search", params={"q": "ann", "page": 101})  # ?page=K walks at most 100 pages
    assert deep.status_code == 400 and "too deep to find by number" in deep.text


def test_a_second_busier_than_a_read_is_read_whole(settings: Settings) -> None:
    settings.web_page_size = 2  # a side is read 14 rows at a time; this second holds 40 matches
    busy = [(BASE + 500 + 0.99 - n / 100, None, n % 2 == 0, ["Ann"] if n % 3 else []) for n in range(40)]
    ids = _add(settings, busy)
    found = {i: BASE + 500 for i, (_, _, named, texts) in zip(ids, busy, strict=True) if named or texts}
    client = _client(settings)
    pages = _walk_older(client, "/search?q=ann")
    assert [i for p in pages for i in p] == _newest_first(found)
    newer = f"/search?q=ann&after={_position(found, pages[-2][-1])}"  # the last page's own URL
    back = []
    while newer is not None:
        ids, _, newer = _get(client, newer)
        back.append(ids)
    assert back == pages[::-1]  # the last page, then newer through the busy second: the same pages


def _position(found: dict[int, int], photo_id: int) -> str:
    from pipeline.web.search_stream import EPOCH_OFFSET, Position

    return Position(found[photo_id] + EPOCH_OFFSET, photo_id).token()
