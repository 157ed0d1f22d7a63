"""Caption search on SQLite (FTS5) and PostgreSQL (tsvector): order, pages, prefixes, upkeep."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import delete, update
from sqlalchemy.engine import Engine
from sqlmodel import Session

from pipeline.store.models import Caption, Photo
from pipeline.store.search import Hit, SearchError, search_captions

# (path, taken_at year or None, mtime, caption); without taken_at the file's mtime orders the photo
ALBUM = [
    ("/album/2019-beach.jpg", 2019, 1.0, "Susan and Mike at the beach."),
    ("/album/2023-grace.jpg", 2023, 2.0, "Grace and Susan."),
    ("/album/scan-1975.jpg", None, datetime(1975, 6, 1, tzinfo=UTC).timestamp(), "Grandma Susan."),
    ("/album/2021-park.jpg", 2021, 3.0, "Susan is playing in the park with Susan's dog."),
    ("/album/2024-mike.jpg", 2024, 4.0, "Mike."),
    ("/album/1890-old.jpg", 1890, 5.0, "Susan's great-uncle."),
]


def _fill(engine: Engine) -> dict[str, int]:
    ids = {}
    with Session(engine) as session:
        for path, year, mtime, caption in ALBUM:
            taken = datetime(year, 5, 1, 12, tzinfo=UTC) if year else None
            photo = Photo(path=path, sha256="x" * 64, size=1, mtime=mtime, taken_at=taken, state="done")
            session.add(photo)
            session.flush()
            assert photo.id is not None
            ids[path] = photo.id
            session.add(Caption(photo_id=photo.id, text=caption, profile="faces", model_version="v1"))
        session.commit()
    return ids


def _paths(hits: list[Hit]) -> list[str]:
    return [h.path.rsplit("/", 1)[1] for h in hits]


def test_newest_first_with_mtime_fallback_and_pages(engine: Engine) -> None:
    _fill(engine)
    hits = search_captions(engine, "susan")
    assert _paths(hits) == ["2023-grace.jpg", "2021-park.jpg", "2019-beach.jpg", "scan-1975.jpg", "1890-old.jpg"]
    assert hits[0].taken_at is not None and hits[0].taken_at.year == 2023
    assert hits[0].path == "/album/2023-grace.jpg"  # full path
    assert _paths(search_captions(engine, "susan", 2, offset=2)) == ["2019-beach.jpg", "scan-1975.jpg"]
    assert _paths(search_captions(engine, "susan", 2, offset=4)) == ["1890-old.jpg"]
    assert search_captions(engine, "susan", 2, offset=10) == []


def test_every_word_must_match_stemmed_and_prefix(engine: Engine) -> None:
    _fill(engine)
    assert _paths(search_captions(engine, "Susan Mike")) == ["2019-beach.jpg"]
    assert _paths(search_captions(engine, "plays park")) == ["2021-park.jpg"]  # stemmed
    assert _paths(search_captions(engine, "Gra*")) == ["2023-grace.jpg", "scan-1975.jpg"]
    assert _paths(search_captions(engine, "gra* susan")) == ["2023-grace.jpg", "scan-1975.jpg"]
    assert search_captions(engine, "Peter") == []
    assert _paths(search_captions(engine, 'beach) AND ("mike')) == ["2019-beach.jpg"]  # no query syntax


def test_relevance_is_fewest_words_first_and_a_repeated_word_counts_once(engine: Engine) -> None:
    _fill(engine)
    hits = search_captions(engine, "susan", order="relevance")
    # 2, 3, 4 ("Susan's great-uncle": susan s great uncle), 6 and 10 words; Susan twice counts once
    assert _paths(hits) == ["scan-1975.jpg", "2023-grace.jpg", "1890-old.jpg", "2019-beach.jpg", "2021-park.jpg"]
    assert [h.rank for h in hits] == [1 / 2, 1 / 3, 1 / 4, 1 / 6, 1 / 10]
    assert all(h.cursor.startswith("r") for h in hits)


def test_index_follows_changes(engine: Engine) -> None:
    ids = _fill(engine)
    with Session(engine) as session:
        # a photo whose capture time becomes known moves in the order
        session.execute(
            update(Photo)
            .where(Photo.id == ids["/album/scan-1975.jpg"])
            .values(taken_at=datetime(2025, 1, 1, tzinfo=UTC))
        )
        session.execute(update(Photo).where(Photo.id == ids["/album/2019-beach.jpg"]).values(state="missing"))
        session.execute(
            update(Caption).where(Caption.photo_id == ids["/album/2024-mike.jpg"]).values(text="Mike and Susan.")
        )
        session.execute(delete(Caption).where(Caption.photo_id == ids["/album/1890-old.jpg"]))
        session.commit()
    assert _paths(search_captions(engine, "susan")) == [
        "scan-1975.jpg",
        "2024-mike.jpg",
        "2023-grace.jpg",
        "2021-park.jpg",
    ]
    assert _paths(search_captions(engine, "beach")) == []  # missing photos are not shown
    relevance = search_captions(engine, "susan", order="relevance")  # its index follows too
    assert [(p, h.rank) for p, h in zip(_paths(relevance), relevance, strict=True)] == [
        ("scan-1975.jpg", 1 / 2),
        ("2024-mike.jpg", 1 / 3),  # "Mike." became "Mike and Susan."; a tie, newest first
        ("2023-grace.jpg", 1 / 3),
        ("2021-park.jpg", 1 / 10),
    ]


def test_unusable_requests_say_why(engine: Engine) -> None:
    with pytest.raises(SearchError, match="at least one word"):
        search_captions(engine, "  ?! ")
    with pytest.raises(SearchError, match="order must be"):
        search_captions(engine, "susan", order="oldest")
    with pytest.raises(SearchError, match="limit"):
        search_captions(engine, "susan", 0)
    with pytest.raises(SearchError, match="offset"):
        search_captions(engine, "susan", offset=-1)
