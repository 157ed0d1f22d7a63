"""`pipeline retry` through the real command line: failed photos are queued again; nothing to
retry is one `error:` line with exit 1."""

from __future__ import annotations

import subprocess
from pathlib import Path

from pipeline.store import states
from pipeline.store.db import session_scope, upgrade
from pipeline.store.models import Photo, utcnow
from tests.conftest import PIPELINE


def _pipeline(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PIPELINE, *args], capture_output=True, text=True, timeout=120)


def test_retry_failed_photos_then_nothing_left(tmp_path: Path, data_dir: Path) -> None:
    upgrade()
    with session_scope() as session:
        failed, done = (states.new_photo(str(tmp_path / name), "0" * 64, 1, 1.0) for name in ("f.jpg", "d.jpg"))
        session.add_all([failed, done])
        session.flush()
        assert failed.id is not None and done.id is not None
        for photo_id in (failed.id, done.id):
            assert states.claim(session, photo_id, "t", utcnow())
        assert states.fail(session, failed.id, "t", "broken file")
        assert states.finish(session, done.id, "t", profile="faces", model_version="m", enrolment_version=0)
    ids = (failed.id, done.id)

    first = _pipeline("retry")
    assert first.returncode == 0, first.stderr
    with session_scope() as session:
        rows = [session.get(Photo, pid) for pid in ids]
        assert [(p.state, p.attempts, p.error) for p in rows if p] == [("queued", 0, None), ("done", 1, None)]

    again = _pipeline("retry")
    assert again.returncode == 1
    assert again.stderr.strip().startswith("error: nothing to retry") and "Traceback" not in again.stderr

    one = _pipeline("retry", str(tmp_path / "d.jpg"))  # one done photo: tagged again
    assert one.returncode == 0, one.stderr
    with session_scope() as session:
        photo = session.get(Photo, done.id)
        assert photo is not None and (photo.state, photo.work) == ("queued", "tag")
