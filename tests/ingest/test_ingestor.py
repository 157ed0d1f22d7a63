"""The ingestor on real files: a full rescan marks vanished photos missing, a file that comes back
is restored, a changed file is tagged again (through pipeline.store.states)."""

from __future__ import annotations

import os
from pathlib import Path

from sqlmodel import select

from pipeline.ingest.ingestor import Ingestor
from pipeline.store import states
from pipeline.store.db import session_scope, upgrade
from pipeline.store.models import Photo, utcnow
from tests import images


def _state(photo_id: int) -> str:
    with session_scope() as session:
        photo = session.get(Photo, photo_id)
        assert photo is not None
        return photo.state


def test_rescan_marks_vanished_photos_missing_and_a_returning_file_is_restored(tmp_path: Path, data_dir: Path) -> None:
    upgrade()
    folder = tmp_path / "album"
    keep = images.save_jpeg(images.camera(), folder / "keep.jpg")
    gone = images.save_jpeg(images.no_face(), folder / "sub" / "gone.jpg")
    outside = images.save_jpeg(images.astronaut(), tmp_path / "elsewhere" / "other.jpg")
    ingestor = Ingestor(sender=None)
    ids = {p.name: ingestor.file_ready(p) for p in (keep, gone, outside)}
    assert all(ids.values()) and ingestor.registered == 3
    with session_scope() as session:  # "gone" was tagged before it vanished
        pid = ids["gone.jpg"]
        assert pid is not None and states.claim(session, pid, "t", utcnow())
        assert states.finish(session, pid, "t", profile="faces", model_version="m", enrolment_version=0)
    moved_away = tmp_path / "gone.bak"
    os.rename(gone, moved_away)
    os.remove(outside)

    assert ingestor.rescan_done(folder, {keep}) == 1  # only under the folder, only what is gone
    assert _state(ids["gone.jpg"]) == "missing"  # type: ignore[arg-type]  # ids are ints (asserted)
    assert _state(ids["keep.jpg"]) == "queued"  # type: ignore[arg-type]
    assert _state(ids["other.jpg"]) == "queued"  # type: ignore[arg-type]  # outside the rescanned folder
    assert ingestor.rescan_done(folder, {keep}) == 0  # already missing

    os.rename(moved_away, gone)  # back, unchanged: its results count again
    assert ingestor.file_ready(gone) is None  # done: nothing to queue
    assert _state(ids["gone.jpg"]) == "done"  # type: ignore[arg-type]

    images.save_jpeg(images.grace_hopper(), gone)  # new content at the same path: tag again
    os.utime(gone, (1, 1))
    assert ingestor.file_ready(gone) == ids["gone.jpg"]
    with session_scope() as session:
        row = session.exec(select(Photo).where(Photo.id == ids["gone.jpg"])).one()
        assert (row.state, row.work, row.attempts) == ("queued", "tag", 0)
