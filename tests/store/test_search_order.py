"""Relevance over every match against a brute-force BM25, cursor pages while captions arrive, and
migration 0013's backfill of a filled database, on SQLite and PostgreSQL."""

from __future__ import annotations

import math
import random
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, text
from sqlalchemy.engine import Connection, Engine

from pipeline.store import db, search
from pipeline.store.models import Caption, Photo
from pipeline.store.search import Hit, Order, search_captions
from pipeline.store.search_plans import Choice, Plan

NAMES = ["Susan", "Mike", "Grace", "Peter", "Anna", "Tom", "Lucy", "Zoe"]
EXTRAS = ["", " at the beach", " at the beach with a dog", " playing in the garden after lunch"]
START = datetime(2001, 1, 1, tzinfo=UTC)


def _caption(rng: random.Random) -> str:
    """Each word at most once (a caption names each person once): 1-4 names, sometimes more words."""
    names = rng.sample(NAMES, rng.randint(1, 4))
    said = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return said + rng.choice(EXTRAS) + "."


def _fill(engine: Engine, first: int, count: int, rng: random.Random, *, hours: list[int] | None = None) -> None:
    """Photos ``first..first+count-1`` with one caption each; photo ``i`` taken ``hours[i]`` hours
    after 2001 (default: ``i`` hours, so every photo has its own time), every 5th by mtime only."""
    photos, captions = [], []
    for i in range(first, first + count):
        moment = START + timedelta(hours=hours[i - first] if hours else i)
        taken = None if i % 5 == 0 else moment
        photos.append(
            {
                "id": i,
                "path": f"/album/{i:05d}.jpg",
                "sha256": f"{i:064x}",
                "size": 1,
                "mtime": moment.timestamp(),
                "taken_at": taken,
                "state": "done",
                "work": "tag",
                "attempts": 0,
                "created_at": START,
            }
        )
        captions.append(
            {"photo_id": i, "text": _caption(rng), "profile": "faces", "model_version": "v", "created_at": START}
        )
    with engine.begin() as conn:
        conn.execute(insert(Photo.__table__), photos)  # type: ignore[attr-defined]  # SQLModel's table
        conn.execute(insert(Caption.__table__), captions)  # type: ignore[attr-defined]


def _brute_force_bm25(engine: Engine, words: list[str]) -> list[str]:
    """Every caption holding all ``words``, best BM25 first (FTS5's formula: k1 = 1.2, b = 0.75,
    IDF floored at 1e-6), ties newest first: computed here from the captions' own words."""
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT p.path, c.text, p.mtime FROM captions c JOIN photos p ON p.id = c.photo_id")
        ).all()
    docs = [(path, re.findall(r"\w+", caption.lower()), mtime) for path, caption, mtime in rows]
    total = len(docs)
    average = sum(len(tokens) for _, tokens, _ in docs) / total
    scored = []
    for path, tokens, mtime in docs:
        if not all(w in tokens for w in words):
            continue
        score = 0.0
        for w in words:
            having = sum(1 for _, t, _ in docs if w in t)
            idf = max(1e-6, math.log((total - having + 0.5) / (having + 0.5)))
            tf = tokens.count(w)
            score += idf * tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * len(tokens) / average))
        scored.append((-round(score, 9), -mtime, path))  # every photo's time is its mtime here
    return [path for _, _, path in sorted(scored)]


def _walk(engine: Engine, query: str, order: Order, size: int) -> list[Hit]:
    """Every hit of ``query``, page by page through the cursors."""
    hits: list[Hit] = []
    while True:
        page = search_captions(engine, query, size, order=order, after=hits[-1].cursor if hits else None)
        hits += page
        if len(page) < size:
            return hits


@pytest.mark.parametrize("query", ["susan", "Mike Zoe", "beach", "Grace lucy"])
def test_relevance_is_the_brute_force_bm25_order_of_every_match(engine: Engine, query: str) -> None:
    _fill(engine, 1, 400, random.Random(7))
    expected = _brute_force_bm25(engine, query.lower().split())
    assert len(expected) > 14  # several pages, several lengths
    assert [h.path for h in _walk(engine, query, "relevance", 7)] == expected
    assert [h.path for h in search_captions(engine, query, 9, order="relevance", offset=9)] == expected[9:18]
    if engine.dialect.name == "sqlite":  # and FTS5's own bm25() agrees, ties newest first
        with engine.connect() as conn:
            sql = (
                "SELECT p.path FROM captions_fts f JOIN captions c ON c.sort_key = f.rowid "
                "JOIN photos p ON p.id = c.photo_id WHERE captions_fts MATCH :q "
                "ORDER BY round(bm25(captions_fts), 9), f.rowid"
            )
            assert [r[0] for r in conn.execute(text(sql), {"q": query})] == expected


@pytest.mark.parametrize("order", ["newest", "relevance"])
def test_cursor_pages_have_no_repeats_or_gaps_while_captions_arrive(engine: Engine, order: Order) -> None:
    rng = random.Random(3)
    _fill(engine, 1, 150, rng, hours=[rng.randrange(0, 5000) for _ in range(150)])
    before = {h.path for h in _walk(engine, "susan", order, 1000)}
    seen: list[Hit] = []
    arrivals = 0
    while True:
        page = search_captions(engine, "susan", 5, order=order, after=seen[-1].cursor if seen else None)
        if page:  # the page before this one, by its first hit's cursor: the 5 hits before it now
            now = _walk(engine, "susan", order, 1000)
            at = now.index(page[0])
            assert search_captions(engine, "susan", 5, order=order, before=page[0].cursor) == now[max(0, at - 5) : at]
        seen += page
        if len(page) < 5:
            break
        arrivals += 1  # new captions around the cursor: some before it (not shown), some after it
        _fill(engine, 1000 + 10 * arrivals, 4, rng, hours=[rng.randrange(0, 5000) for _ in range(4)])
    paths = [h.path for h in seen]
    assert len(paths) == len(set(paths))  # no hit twice
    assert before <= set(paths)  # none of the captions there at the start skipped
    assert [h.cursor for h in seen] == sorted((h.cursor for h in seen), key=lambda c: int(c[1:]))
    assert arrivals >= 5


@pytest.mark.parametrize("dialect", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_migration_0013_backfills_a_filled_database(
    request: pytest.FixtureRequest, tmp_path: Path, dialect: str
) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}" if dialect == "sqlite" else request.getfixturevalue("postgres_url")
    db.upgrade(url, "0012")
    engine = db.make_engine(url)
    try:
        with engine.begin() as conn:  # captions written before 0013, through 0012's triggers
            for i in range(1, 41):
                conn.execute(
                    text(
                        "INSERT INTO photos (id, path, sha256, size, mtime, taken_at, state, work, attempts, "
                        "created_at) VALUES (:i, :p, 'x', 1, :m, NULL, 'done', 'tag', 0, CURRENT_TIMESTAMP)"
                    ),
                    {"i": i, "p": f"/old/{i:03d}.jpg", "m": 1_000_000.0 + 3600 * i},
                )
                conn.execute(
                    text(
                        "INSERT INTO captions (photo_id, text, profile, model_version, created_at) "
                        "VALUES (:i, :t, 'faces', 'v', CURRENT_TIMESTAMP)"
                    ),
                    {"i": i, "t": "Susan" + " and Mike" * (i % 4) + "."},
                )
        db.upgrade(url)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM captions WHERE relevance_key IS NULL")).scalar_one() == 0
        hits = _walk(engine, "susan", "relevance", 6)
        words = [1 + 2 * (int(h.path[5:8]) % 4) for h in hits]  # "Susan and Mike and Mike": 5 words
        assert len(hits) == 40 and words == sorted(words)
        newest_first = [int(h.path[5:8]) for h in hits if words[hits.index(h)] == 1]
        assert newest_first == sorted(newest_first, reverse=True)
        with engine.begin() as conn:  # a caption written after the upgrade: one word, the newest
            conn.execute(
                text(
                    "INSERT INTO photos (id, path, sha256, size, mtime, state, work, attempts, created_at) "
                    "VALUES (100, '/old/100.jpg', 'x', 1, 9000000.0, 'done', 'tag', 0, CURRENT_TIMESTAMP)"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO captions (photo_id, text, profile, model_version, created_at) "
                    "VALUES (100, 'Susan.', 'faces', 'v', CURRENT_TIMESTAMP)"
                )
            )
        hits = _walk(engine, "susan", "relevance", 6)
        assert len(hits) == 41 and hits[0].path == "/old/100.jpg"
    finally:
        engine.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("plan", ["walk", "sort", "lexeme"])
def test_each_postgres_plan_pages_the_same(postgres_url: str, monkeypatch: pytest.MonkeyPatch, plan: Plan) -> None:
    """Whichever plan the estimates pick, the pages are the same (forced here, one plan at a time)."""
    db.upgrade(postgres_url)
    engine = db.make_engine(postgres_url)
    try:
        _fill(engine, 1, 400, random.Random(5))
        relevance = _brute_force_bm25(engine, ["susan", "mike"])

        def forced(conn: Connection, tsquery: str, lexemes: list[str], wanted: int) -> Choice:
            return Choice(plan, lexemes[-1] if plan == "lexeme" else "")

        monkeypatch.setattr(search, "choose", forced)
        assert [h.path for h in _walk(engine, "Susan Mike", "relevance", 7)] == relevance
        pages = search_captions(engine, "Susan Mike", 5, order="relevance", offset=5)
        assert [h.path for h in pages] == relevance[5:10]
        back = search_captions(engine, "Susan Mike", 5, order="relevance", before=pages[0].cursor)
        assert [h.path for h in back] == relevance[:5]
        if plan != "lexeme":  # the lexeme lists are in relevance order only
            newest = _walk(engine, "Susan Mike", "newest", 7)
            assert [h.mtime for h in newest] == sorted((h.mtime for h in newest), reverse=True)
            assert {h.path for h in newest} == set(relevance)
        ids = [int(path[7:12]) for path in relevance]  # "/album/00012.jpg" -> 12
        with engine.begin() as conn:  # the keys and lexeme lists follow text, time and deletes
            conn.execute(
                text("UPDATE captions SET text = 'Susan and Mike.' WHERE photo_id IN (:a, :b)"), {"a": 1, "b": 2}
            )
            conn.execute(text("UPDATE captions SET text = 'Nobody.' WHERE photo_id = :i"), {"i": ids[0]})
            conn.execute(
                text(
                    "UPDATE photos SET mtime = mtime + 86400 * 3650, taken_at = taken_at + interval '3650 days' "
                    "WHERE id IN (:a, :b, :c)"
                ),
                {"a": ids[1], "b": ids[2], "c": ids[-1]},
            )
            conn.execute(text("DELETE FROM captions WHERE photo_id IN (:a, :b)"), {"a": ids[3], "b": ids[-2]})
        after = _brute_force_bm25(engine, ["susan", "mike"])
        assert after != relevance
        assert [h.path for h in _walk(engine, "Susan Mike", "relevance", 7)] == after
    finally:
        engine.dispose()
