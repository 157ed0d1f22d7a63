"""Benchmark caption search over a large album on SQLite (FTS5) and PostgreSQL (tsvector/GIN).

    python bench/bench_search.py [--n 100000] [--dbs sqlite,postgres] [--repeats 30]
                                 [--pg-url postgresql+psycopg://postgres@127.0.0.1:5432/bench_search]
                                 [--sqlite-path bench/out/search-bench.db] [--reuse]
                                 [--out bench/out/search.json]

1. Builds the database the way an upgraded album gets it: Alembic to revision 0001, N photos and
   N captions bulk-inserted through the project's models (``Photo``/``Caption`` tables), then
   ``alembic upgrade head`` (views, full-text indexes, ``sort_key``, ``relevance_key``) over the
   filled tables. ``--reuse`` skips this and times the databases at ``--sqlite-path`` and
   ``--pg-url`` as they are, after upgrading them to head when an older checkout built them.
   Captions are like the faces profile's: 0-3 names drawn from 60 people with very uneven
   frequencies (the most common name is in about a quarter of the captions, "Zebedee" in 25),
   30 % with a few more words, always including "at the beach". Photo times span 2000-2025;
   20 % have no ``taken_at`` (their mtime orders them).
2. Times :func:`pipeline.store.search.search_captions` in this warm process: each query kind
   ``--repeats`` times (first page of 20, unless the kind says otherwise: "page 51" skips 1,000
   hits by offset, "by cursor" starts after hit 1,000 by its cursor, "before a cursor" ends just
   before hit 1,001, as the web app's "newer" link does); prints p50/p95/max in ms
   and the number of matches, and writes everything as JSON.

The PostgreSQL database named in ``--pg-url`` is dropped and created again. Not a test: nothing
is asserted. N = 1,000,000 takes several minutes per database on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

NAMES = [
    "Susan", "Mike", "Grace", "Eileen", "Peter", "Anna", "Tom", "Lucy", "James", "Emma", "Oliver", "Mia",
    "Jack", "Ella", "Harry", "Ruby", "Leo", "Chloe", "Noah", "Isla", "Oscar", "Freya", "Alfie", "Ivy",
    "Arthur", "Rosie", "Henry", "Daisy", "Archie", "Poppy", "Theo", "Evie", "Max", "Alice", "Finn",
    "Sophie", "Louis", "Lily", "Ethan", "Grandma", "Grandpa", "Ben", "Kate", "Sam", "Nina", "Paul",
    "Rita", "Hugo", "Vera", "Milo", "Olga", "Igor", "Zara", "Felix", "Hazel", "Otto", "Maud", "Cyril",
    "Edna", "Wilfred",
]  # fmt: skip  # one name list reads better packed than one per line
RARE_NAME, RARE_COUNT = "Zebedee", 25
EXTRAS = ["at the beach", "at the beach with a dog", "at the beach in the rain", "at the beach, birthday cake"]

QUERIES: list[tuple[str, str, str, int, str]] = [
    # (kind, text, order, offset, cursor: "" by offset; "after": the page after hit number ``offset``;
    #  "before": the page before hit number ``offset + 1`` (the web app's "newer" link); cursors fetched untimed)
    ("rare name", RARE_NAME, "newest", 0, ""),
    ("common name", NAMES[0], "newest", 0, ""),
    ("common word (beach)", "beach", "newest", 0, ""),
    ("two common names", f"{NAMES[0]} {NAMES[1]}", "newest", 0, ""),
    ("common name + rare name", f"{NAMES[0]} {RARE_NAME}", "newest", 0, ""),
    ("prefix (Gra*)", "Gra*", "newest", 0, ""),
    ("no match", "Xylophone", "newest", 0, ""),
    ("common name, page 51", NAMES[0], "newest", 1000, ""),
    ("common name, page 51 by cursor", NAMES[0], "newest", 1000, "after"),
    ("common name, page 50 before a cursor", NAMES[0], "newest", 1000, "before"),
    ("relevance: rare name", RARE_NAME, "relevance", 0, ""),
    ("relevance: common name", NAMES[0], "relevance", 0, ""),
    ("relevance: beach", "beach", "relevance", 0, ""),
    ("relevance: two common names", f"{NAMES[0]} {NAMES[1]}", "relevance", 0, ""),
    ("relevance: common + rare name", f"{NAMES[0]} {RARE_NAME}", "relevance", 0, ""),
    ("relevance: prefix (Gra*)", "Gra*", "relevance", 0, ""),
    ("relevance: beach, page 51", "beach", "relevance", 1000, ""),
    ("relevance: beach, page 51 by cursor", "beach", "relevance", 1000, "after"),
    ("relevance: beach, page 50 before a cursor", "beach", "relevance", 1000, "before"),
]


def caption_for(rng: random.Random, weights: list[float]) -> str:
    """0-3 distinct names (weighted), sometimes a few more words; the faces profile's shape."""
    count = rng.choices([0, 1, 2, 3], weights=[15, 45, 28, 12])[0]
    names: list[str] = []
    while len(names) < count:
        name = rng.choices(NAMES, weights=weights)[0]
        if name not in names:
            names.append(name)
    if not names:
        text = "No people"
    elif len(names) == 1:
        text = names[0]
    else:
        text = ", ".join(names[:-1]) + " and " + names[-1]
    if rng.random() < 0.3:
        text += " " + rng.choice(EXTRAS)
    return text + "."


def build(url: str, n: int, seed: int = 0) -> dict[str, float]:
    """Fill a fresh database at ``url`` with ``n`` photos and captions; returns seconds per phase."""
    from sqlalchemy import insert

    from pipeline.store import db
    from pipeline.store.models import Caption, Photo

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    db.upgrade(url, "0001")
    engine = db.make_engine(url)
    rng = random.Random(seed)
    weights = [1.0 / (rank + 1) ** 1.1 for rank in range(len(NAMES))]
    rare_at = set(rng.sample(range(n), RARE_COUNT))
    start, span = datetime(2000, 1, 1, tzinfo=UTC).timestamp(), 26 * 365.25 * 86400
    now = datetime.now(UTC)
    batch = 20_000
    photos, captions = Photo.__table__, Caption.__table__
    for first in range(0, n, batch):
        photo_rows, caption_rows = [], []
        for i in range(first, min(n, first + batch)):
            moment = start + rng.random() * span
            taken = None if rng.random() < 0.2 else datetime.fromtimestamp(moment, UTC)
            photo_rows.append(
                {
                    "id": i + 1,
                    "path": f"/srv/family/photos/{datetime.fromtimestamp(moment, UTC):%Y/%m}/IMG_{i:07d}.jpg",
                    "sha256": f"{i:064x}",
                    "size": 4_000_000,
                    "mtime": moment,
                    "taken_at": taken,
                    "state": "done",
                    "work": "tag",
                    "attempts": 0,
                    "created_at": now,
                }
            )
            text = caption_for(rng, weights)
            if i in rare_at:
                text = f"{RARE_NAME} and {text}"
            caption_rows.append(
                {"photo_id": i + 1, "text": text, "profile": "faces", "model_version": "bench", "created_at": now}
            )
        with engine.begin() as conn:
            conn.execute(insert(photos), photo_rows)
            conn.execute(insert(captions), caption_rows)
    engine.dispose()
    timings["insert_s"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    db.upgrade(url)
    timings["migrate_s"] = time.perf_counter() - t1
    if url.startswith("postgresql"):
        engine = db.make_engine(url)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
        engine.dispose()
    return timings


def upgrade_reused(url: str) -> dict[str, float]:
    """Bring a database built by an older checkout to head (seconds; 0 when it already is)."""
    from pipeline.store import db

    if db.current_revision(url) == db.head_revision():
        return {}
    t0 = time.perf_counter()
    db.upgrade(url)
    seconds = time.perf_counter() - t0
    if url.startswith("postgresql"):
        engine = db.make_engine(url)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")  # as autovacuum leaves a live database
        engine.dispose()
    db.dispose_engines()
    return {"upgrade_to_head_s": seconds}


def fresh_postgres(url: str) -> None:
    """Drop and create the database named in ``url`` (connecting to ``postgres``)."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    target = make_url(url)
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)')
        conn.exec_driver_sql(f'CREATE DATABASE "{target.database}"')
    admin.dispose()


def time_queries(url: str, repeats: int) -> list[dict[str, Any]]:
    """p50/p95/max milliseconds of each query kind (warm engine, one process)."""
    from sqlalchemy import text

    from pipeline.store.db import make_engine
    from pipeline.store.search import search_captions

    engine = make_engine(url)
    results = []
    for kind, query, order, offset, by_cursor in QUERIES:
        page: dict[str, Any] = {"order": order, "offset": offset}
        if by_cursor:  # the cursor of hit number ``offset`` (after) or ``offset + 1`` (before), untimed
            at = offset - 1 if by_cursor == "after" else offset
            page = {"order": order, by_cursor: search_captions(engine, query, 1, order=order, offset=at)[0].cursor}
        search_captions(engine, query, **page)  # warm the cache once
        ms = []
        for _ in range(repeats):
            t = time.perf_counter()
            hits = search_captions(engine, query, **page)
            ms.append((time.perf_counter() - t) * 1000)
        ms.sort()
        results.append(
            {
                "kind": kind,
                "query": query,
                "order": order,
                "offset": offset,
                "by_cursor": by_cursor,
                "hits_on_page": len(hits),
                "p50_ms": round(statistics.median(ms), 2),
                "p95_ms": round(ms[min(len(ms) - 1, int(0.95 * len(ms)))], 2),
                "max_ms": round(ms[-1], 2),
            }
        )
    with engine.connect() as conn:  # how many captions each word matches (for the reader)
        for row in results:
            if row["offset"] == 0 and row["order"] == "newest":
                row["matches"] = count_matches(conn, url, row["query"], text)
    engine.dispose()
    return results


def count_matches(conn: Any, url: str, query: str, text: Any) -> int:
    from pipeline.store.search import fts5_query, parse_terms, tsquery_text

    terms = parse_terms(query)
    if url.startswith("sqlite"):
        sql = "SELECT count(*) FROM captions_fts WHERE captions_fts MATCH :q"
        return int(conn.execute(text(sql), {"q": fts5_query(terms)}).scalar_one())
    sql = "SELECT count(*) FROM captions WHERE text_tsv @@ to_tsquery('english', :q)"
    return int(conn.execute(text(sql), {"q": tsquery_text(terms)}).scalar_one())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000, help="captions (1000000 for the issue's size)")
    parser.add_argument("--dbs", default="sqlite,postgres")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/bench_search")
    parser.add_argument("--sqlite-path", type=Path, default=REPO / "bench" / "out" / "search-bench.db")
    parser.add_argument(
        "--reuse", action="store_true", help="time an existing database of the same --n (upgraded to head first)"
    )
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "search.json")
    args = parser.parse_args()

    report: dict[str, Any] = {"n": args.n, "repeats": args.repeats, "machine": platform.node(), "databases": {}}
    for name in args.dbs.split(","):
        if name == "sqlite":
            url = f"sqlite:///{args.sqlite_path}"
            if not args.reuse:
                args.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{args.sqlite_path}{suffix}").unlink(missing_ok=True)
        elif name == "postgres":
            url = args.pg_url
            if not args.reuse:
                fresh_postgres(url)
        else:
            raise SystemExit(f"unknown database {name!r}: sqlite or postgres")
        print(f"== {name}: {args.n:,} captions")
        build_s = upgrade_reused(url) if args.reuse else build(url, args.n)
        for phase, seconds in build_s.items():
            print(f"   build {phase}: {seconds:.1f}")
        rows = time_queries(url, args.repeats)
        print(f"   {'query kind':<28} {'matches':>9} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
        for row in rows:
            matches = f"{row['matches']:,}" if "matches" in row else ""
            print(f"   {row['kind']:<28} {matches:>9} {row['p50_ms']:>8} {row['p95_ms']:>8} {row['max_ms']:>8}")
        report["databases"][name] = {"build": build_s, "queries": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
