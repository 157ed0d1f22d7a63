"""Benchmark the web app's pages on a large album: server time of People, Person (first page),
Search (first pages, and a name's page 21 reached by its "older" links), and a cached thumbnail.

    python bench/bench_web.py [--photos 10000] [--faces-per-photo 3] [--people 50] [--repeat 20]
                              [--database-url URL] [--out bench/out/web.json]

Fills a fresh database (SQLite in a temporary data dir, or ``--database-url``, which is emptied)
through the project's models and migrations: N photos, N x faces-per-photo faces (half of them
named, people drawn with Zipf weights so one person has a large share), one caption per photo
(the full-text index fills through its triggers / generated column). One photo row points at a
real JPEG so its thumbnail can be made once and then served from the cache. Each page is then
requested ``--repeat`` times through the app (FastAPI's test client, in-process); the figure is
the app's own ``Server-Timing`` (time inside the app, the HTTP client excluded): median, p95, max.
Not a test: nothing is asserted. The issue's size is ``--photos 100000`` (300,000 faces).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

WORDS = "beach garden kitchen birthday cake snow mountain lake dog cat bicycle car school park city".split()
NAMES = [f"Person{i:02d}" for i in range(200)]


def fill(db_url: str, photos: int, faces_per_photo: int, people: int, real_jpeg: Path, seed: int = 0) -> int:
    """Insert the album; returns the id of the photo backed by ``real_jpeg``."""
    from sqlalchemy import insert

    from pipeline.store.db import get_engine, upgrade
    from pipeline.store.models import Caption, Face, Person, Photo, Reference

    upgrade(db_url)
    rng = random.Random(seed)
    engine = get_engine(db_url)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    weights = [1.0 / (k + 1) for k in range(people)]
    real_sha = hashlib.sha256(real_jpeg.read_bytes()).hexdigest()
    with engine.begin() as conn:
        conn.execute(
            insert(Person), [{"name": NAMES[k], "name_key": NAMES[k].lower(), "created_at": now} for k in range(people)]
        )
        conn.execute(
            insert(Reference),
            [
                dict(
                    person_id=k + 1,
                    sha256=real_sha,
                    stored_path=str(real_jpeg),
                    original_path=str(real_jpeg),
                    x=0.3,
                    y=0.2,
                    w=0.3,
                    h=0.4,
                    det_score=0.9,
                    embedding=b"\0" * 512,
                    created_at=now,
                )
                for k in range(people)
            ],
        )
    chunk = 5000
    face_id = 0
    for start in range(0, photos, chunk):
        ids = range(start + 1, min(photos, start + chunk) + 1)
        photo_rows, face_rows, caption_rows = [], [], []
        for pid in ids:
            taken = now - timedelta(minutes=pid) if pid % 3 else None  # a third have no EXIF time: mtime counts
            real = pid == 1
            photo_rows.append(
                dict(
                    id=pid,
                    path=str(real_jpeg) if real else f"/album/{pid // 1000:03d}/img_{pid:06d}.jpg",
                    sha256=real_sha if real else f"{pid:064x}",
                    hash_kind="sha256",
                    size=123_456,
                    mtime=1.7e9 - pid * 60.0,
                    width=4000,
                    height=3000,
                    taken_at=taken,
                    state="done",
                    work="tag",
                    attempts=1,
                    profile="faces",
                    model_version="faces-v1",
                    enrolment_version=1,
                    created_at=now,
                    done_at=now,
                )
            )
            present = []
            for idx in range(faces_per_photo):
                face_id += 1
                named = rng.random() < 0.5
                person = rng.choices(range(1, people + 1), weights)[0] if named else None
                present += [NAMES[person - 1]] if person else []
                face_rows.append(
                    dict(
                        id=face_id,
                        photo_id=pid,
                        idx=idx,
                        x=0.1 + idx * 0.3,
                        y=0.2,
                        w=0.2,
                        h=0.3,
                        det_score=0.9,
                        embedding=b"\0" * 512,
                        person_id=person,
                        match_score=0.5 if person else None,
                        user_set=False,
                    )
                )
            text = " and ".join(present or ["someone"]) + f" at the {rng.choice(WORDS)} with a {rng.choice(WORDS)}."
            caption_rows.append(
                dict(photo_id=pid, text=text, profile="faces", model_version="faces-v1", created_at=now)
            )
        with engine.begin() as conn:
            conn.execute(insert(Photo), photo_rows)
            conn.execute(insert(Face), face_rows)
            conn.execute(insert(Caption), caption_rows)
    # What autovacuum does on a live PostgreSQL database (statistics, and the visibility map that
    # lets index-only scans skip the table); SQLite: statistics.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("ANALYZE" if engine.dialect.name == "sqlite" else "VACUUM ANALYZE")
    return 1


def timings(client: object, url: str, repeat: int) -> dict[str, float]:
    """Server-Timing of ``repeat`` GETs of ``url`` (after one warm-up request), in ms."""
    get = client.get  # type: ignore[attr-defined]  # a TestClient
    first = get(url)
    assert first.status_code == 200, (url, first.status_code, first.text[:300])
    values = []
    for _ in range(repeat):
        response = get(url)
        values.append(float(response.headers["server-timing"].split("dur=")[1]))
    values.sort()
    return {
        "median_ms": round(statistics.median(values), 2),
        "p95_ms": round(values[max(0, int(len(values) * 0.95) - 1)], 2),
        "max_ms": round(values[-1], 2),
    }


def older_link(client: object, url: str, hops: int) -> str:
    """The Search page reached from ``url`` by following its "older" link ``hops`` times (fewer
    when the results end sooner): what a deep page costs with the merged stream's cursor."""
    import re

    get = client.get  # type: ignore[attr-defined]  # a TestClient
    for _ in range(hops):
        found = re.search(r'<a href="(/search\?[^"]+)" rel="next">', get(url).text)
        if found is None:
            break
        url = found.group(1).replace("&amp;", "&")
    return url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=10_000)
    parser.add_argument("--faces-per-photo", type=int, default=3)
    parser.add_argument("--people", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--database-url", default=None, help="PostgreSQL URL to use (emptied before it is filled)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "web.json")
    parser.add_argument(
        "--work-dir", type=Path, default=None, help="Keep the album here; a later run with the same sizes reuses it"
    )
    args = parser.parse_args()

    from fastapi.testclient import TestClient
    from PIL import Image

    from pipeline.config import Settings
    from pipeline.web.app import create_app

    work = args.work_dir or Path(tempfile.mkdtemp(prefix="bench-web-"))
    work.mkdir(parents=True, exist_ok=True)
    real_jpeg = work / "real.jpg"
    if not real_jpeg.exists():
        Image.effect_mandelbrot((4000, 3000), (-2, -1.2, 1, 1.2), 60).convert("RGB").save(real_jpeg, quality=90)
    settings = Settings(data_dir=work / "data", database_url=args.database_url)
    started = time.perf_counter()
    sizes = f"{args.photos} {args.faces_per_photo} {args.people} {settings.db_url}"
    marker = work / "filled.txt"
    if not marker.exists() or marker.read_text() != sizes:
        if args.database_url:
            from sqlalchemy import create_engine

            with create_engine(args.database_url).begin() as conn:
                conn.exec_driver_sql("DROP SCHEMA public CASCADE")
                conn.exec_driver_sql("CREATE SCHEMA public")
        real_id = fill(settings.db_url, args.photos, args.faces_per_photo, args.people, real_jpeg)
        marker.write_text(sizes)
    else:
        real_id = 1  # the album this script wrote earlier with the same sizes
    fill_s = time.perf_counter() - started
    client = TestClient(create_app(settings))
    biggest = 1  # Zipf weights: person 1 has the most faces
    results = {
        "people": timings(client, "/people", args.repeat),
        "person_first_page": timings(client, f"/people/{biggest}", args.repeat),
        "search_caption": timings(client, "/search?q=beach+dog", args.repeat),
        "search_name": timings(client, f"/search?q={NAMES[0]}", args.repeat),
        "search_name_page_21": timings(client, older_link(client, f"/search?q={NAMES[0]}", 20), args.repeat),
        "thumbnail_cached": timings(client, f"/media/photos/{real_id}/320.jpg", args.repeat),
    }
    figures = {
        "photos": args.photos,
        "faces": args.photos * args.faces_per_photo,
        "people": args.people,
        "database": settings.db_url.split(":")[0],
        "fill_seconds": round(fill_s, 1),
        "repeat": args.repeat,
        "machine": f"{os.cpu_count()} CPUs, {sys.platform}",
        "pages": results,
    }
    print(
        f"{args.photos} photos, {args.photos * args.faces_per_photo} faces, {args.people} people on "
        f"{figures['database']} (filled in {fill_s:.0f} s); server time over {args.repeat} requests:"
    )
    for page, figure in results.items():
        print(
            f"  {page:<20} median {figure['median_ms']:7.1f} ms   "
            f"p95 {figure['p95_ms']:7.1f} ms   max {figure['max_ms']:7.1f} ms"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=1))
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
