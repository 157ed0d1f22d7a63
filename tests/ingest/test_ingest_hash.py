"""Content hashes across the upgrade to BLAKE3: rows hashed with SHA-256 are never re-tagged."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from blake3 import blake3
from sqlalchemy import text
from sqlmodel import Session, select

from pipeline.ingest.ingestor import Ingestor
from pipeline.photos.files import content_hash
from pipeline.store import db
from pipeline.store.models import Photo


class Sent:
    def __init__(self) -> None:
        self.ids: list[int] = []

    def add(self, photo_id: int) -> None:
        self.ids.append(photo_id)


def test_content_hash_kinds(tmp_path: Path) -> None:
    path = tmp_path / "big.jpg"
    payload = os.urandom(3 * (1 << 20) + 17)  # several read chunks and a partial one
    path.write_bytes(payload)
    assert content_hash(path) == blake3(payload).hexdigest()
    assert content_hash(path, "sha256") == hashlib.sha256(payload).hexdigest()


def test_rows_from_before_the_upgrade_keep_their_results(tmp_path: Path, data_dir: Path) -> None:
    album = tmp_path / "album"
    album.mkdir()
    files = {name: album / f"{name}.jpg" for name in ("same", "touched", "moved", "changed")}
    for name, path in files.items():
        path.write_bytes(f"jpeg bytes of {name}".encode() * 100)
    db.upgrade(revision="0006")  # the schema before BLAKE3: rows written by the old ingestor
    with db.get_engine().begin() as conn:
        for path in files.values():
            st = path.stat()
            conn.execute(
                text(
                    "INSERT INTO photos (path, sha256, size, mtime, state, work, attempts, model_version, "
                    "done_at, created_at) VALUES (:p, :h, :s, :m, 'done', 'tag', 1, 'faces:v1', "
                    "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                ),
                {"p": str(path), "h": hashlib.sha256(path.read_bytes()).hexdigest(), "s": st.st_size, "m": st.st_mtime},
            )
    db.upgrade()
    before = {row.path: row.id for row in _rows()}

    os.utime(files["touched"], (1_000_000, 1_000_000))  # same bytes, new mtime
    moved_to = album / "sub" / "moved-here.jpg"
    moved_to.parent.mkdir()
    files["moved"].rename(moved_to)
    files["changed"].write_bytes(b"new bytes" * 50)
    new = album / "new.jpg"
    new.write_bytes(b"a new photo" * 40)

    sent = Sent()
    ingestor = Ingestor(sent)
    for path in (files["same"], files["touched"], moved_to, files["changed"], new):
        ingestor.file_ready(path)

    rows = {row.path: row for row in _rows()}
    assert {p: r.hash_kind for p, r in rows.items()} == dict.fromkeys(rows, "blake3")
    for path in (files["same"], files["touched"], moved_to, files["changed"], new):
        assert rows[str(path)].sha256 == blake3(path.read_bytes()).hexdigest()
    assert rows[str(files["same"])].state == "done"
    assert rows[str(files["touched"])].state == "done"
    assert rows[str(moved_to)].id == before[str(files["moved"])] and rows[str(moved_to)].state == "done"
    assert rows[str(files["changed"])].state == "queued"  # new bytes: tagged again
    assert sorted(sent.ids) == sorted([rows[str(files["changed"])].id, rows[str(new)].id])


def _rows() -> list[Photo]:
    with Session(db.get_engine()) as session:
        return list(session.exec(select(Photo)).all())
