"""`pipeline search` as a user runs it: newest first, pages, CSV/JSON with full paths, clear errors."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path

from sqlmodel import Session

from pipeline.store import db
from pipeline.store.models import Caption, Photo
from tests.conftest import cli, flat


def test_search_pages_and_formats(data_dir: Path) -> None:
    db.upgrade()
    with Session(db.get_engine()) as session:
        for year in range(2001, 2026):
            photo = Photo(
                path=f"/family/photos/{year}/a very long folder name for wrapping/IMG_{year}.jpg",
                sha256=f"{year:064d}",
                size=1,
                mtime=0.0,
                taken_at=datetime(year, 1, 1, tzinfo=UTC),
                state="done",
            )
            session.add(photo)
            session.flush()
            assert photo.id is not None
            text = "Grace and Mike." if year % 2 else "Grace."
            session.add(Caption(photo_id=photo.id, text=text, profile="faces", model_version="v"))
        session.commit()
    db.dispose_engines()

    first = json.loads(cli("search", "gra*", "--json", "--limit", "5").stdout)
    assert [h["taken_at"][:4] for h in first] == ["2025", "2024", "2023", "2022", "2021"]
    third = json.loads(cli("search", "grace", "--json", "--limit", "5", "--page", "3").stdout)
    assert [h["taken_at"][:4] for h in third] == ["2015", "2014", "2013", "2012", "2011"]
    by_offset = json.loads(cli("search", "grace", "--json", "--limit", "5", "--offset", "10").stdout)
    assert by_offset == third

    rows = list(csv.DictReader(io.StringIO(cli("search", "Mike", "--csv", "-n", "100").stdout)))
    assert len(rows) == 13
    assert rows[0]["path"] == "/family/photos/2025/a very long folder name for wrapping/IMG_2025.jpg"
    assert rows[0]["caption"] == "Grace and Mike."

    table = cli("search", "grace", env={"COLUMNS": "60"}).stdout
    assert "IMG_2025.jpg" in table.replace("\n", "").replace("│", "").replace(" ", "")  # folded, never cut
    assert "more with --after n" in table and "(or --offset 20)" in table

    # deep pages by cursor: each hit's cursor continues after it, as the table's last line offers
    second = json.loads(cli("search", "grace", "--json", "-n", "5", "--after", first[-1]["cursor"]).stdout)
    assert second == json.loads(cli("search", "grace", "--json", "-n", "5", "--offset", "5").stdout)
    follow = cli("search", "grace", "-n", "5", "--after", second[-1]["cursor"], env={"COLUMNS": "200"}).stdout
    assert f"5 hits after {second[-1]['cursor']}, newest first; more with --after" in flat(follow)
    stale = cli("search", "grace", "--after", "r12", check=False)
    assert stale.returncode == 1 and "error: cursor 'r12' belongs to the other order" in flat(stale.stderr)

    relevance = json.loads(cli("search", "grace", "--order", "relevance", "--json", "-n", "3").stdout)
    assert all(h["rank"] > 0 for h in relevance)

    bad = cli("search", "grace", "--order", "oldest", check=False)
    assert bad.returncode == 2 and "newest, relevance" in flat(bad.stderr)
    empty = cli("search", "?!", check=False)
    assert empty.returncode == 1 and "error: give at least one word" in flat(empty.stderr)
