"""The Celery task run in-process (``apply``: the real task body, no broker), the progress lines
``pipeline run`` prints for it, and the worker's cached people index."""

from __future__ import annotations

from pathlib import Path

from pipeline.config import get_settings
from pipeline.ingest.ingestor import Ingestor
from pipeline.people.enrolment import enroll
from pipeline.people.index import load_people_index
from pipeline.people.registry import record_event
from pipeline.profiles import get_profile
from pipeline.service.progress import ProgressReporter, state_counts
from pipeline.store.db import session_scope, upgrade
from tests import images


def test_task_tags_photos_and_progress_reports_them(tmp_path: Path, data_dir: Path) -> None:
    from workers.tasks import tag_photos

    upgrade()
    a = images.astronaut()
    ref = images.save_jpeg(images.crop_around_face(a, images.ASTRONAUT_FACE, 0.5), tmp_path / "ref" / "eileen.jpg")
    with session_scope() as session:
        enroll(session, get_settings(), "Eileen", [ref])
    folder = tmp_path / "album"
    good = images.save_jpeg(a, folder / "eileen.jpg")
    broken = folder / "broken.jpg"
    broken.write_bytes(good.read_bytes()[:200])  # a truncated JPEG: a clear failure
    ingestor = Ingestor(sender=None)
    ids = [ingestor.file_ready(good), ingestor.file_ready(broken)]
    assert all(ids)
    lines: list[str] = []
    progress = ProgressReporter(None, lines.append, counts_every=0)

    summary = tag_photos.apply(args=[ids], task_id="task-in-process").get()

    assert summary == {"done": 1, "failed": 1, "skipped": 0, "missing": 0}
    assert progress.poll() is False  # nothing queued or processing any more
    assert any(line.startswith(f"done    {good}") and "[Eileen]" in line for line in lines), lines
    assert any(line.startswith(f"failed  {broken}:") for line in lines), lines
    with session_scope() as session:
        counts = state_counts(session)
    assert counts == {"queued": 0, "processing": 0, "done": 1, "failed": 1, "missing": 0}
    assert progress.summary()


def test_people_index_is_cached_until_the_enrolment_changes(tmp_path: Path, data_dir: Path) -> None:
    upgrade()
    settings = get_settings()
    ref = images.save_jpeg(
        images.crop_around_face(images.astronaut(), images.ASTRONAUT_FACE, 0.5), tmp_path / "ref" / "e.jpg"
    )
    profile = get_profile(settings)
    with session_scope() as session:
        enroll(session, settings, "Eileen", [ref])
    with session_scope() as session:
        first = load_people_index(session, settings, profile)
        assert [p.name for p in first.people] == ["Eileen"] and first.people[0].ref_embeddings.shape == (1, 128)
        assert load_people_index(session, settings, profile) is first
        record_event(session, "rename", first.people[0].id, "test")
    with session_scope() as session:
        again = load_people_index(session, settings, profile)
    assert again is not first and again.version > first.version
