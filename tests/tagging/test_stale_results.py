"""Photos finished against an enrolment version that changed meanwhile are re-matched (a bounded
number of rounds), through pipeline.store.states."""

from __future__ import annotations

from pathlib import Path

from pipeline.people.registry import enrolment_version, record_event
from pipeline.store import states
from pipeline.store.db import session_scope, upgrade
from pipeline.store.models import Photo, utcnow
from pipeline.tagging.batch import MAX_REMATCH_ROUNDS, _stale_results


def test_results_of_an_older_enrolment_are_requeued_for_rematch(tmp_path: Path, data_dir: Path) -> None:
    upgrade()
    with session_scope() as session:
        record_event(session, "enroll", None, "test")
        session.flush()
        current = enrolment_version(session)
        photos = [states.new_photo(str(tmp_path / f"{i}.jpg"), "0" * 64, 1, 1.0) for i in range(3)]
        session.add_all(photos)
        session.flush()
        ids = [p.id for p in photos if p.id is not None]
        for pid, version in zip(ids, (current - 1, current, current - 1), strict=True):
            assert states.claim(session, pid, "t", utcnow())
            assert states.finish(session, pid, "t", profile="faces", model_version="m", enrolment_version=version)
        done = list(ids)
        assert _stale_results(session, done, MAX_REMATCH_ROUNDS) == []  # out of rounds: left as they are
        stale = _stale_results(session, done, 0)
        assert sorted(stale) == [ids[0], ids[2]] and done == [ids[1]]
        rows = [session.get(Photo, pid) for pid in ids]
        assert [(p.state, p.work) for p in rows if p] == [("queued", "rematch"), ("done", "tag"), ("queued", "rematch")]
        assert _stale_results(session, done, 0) == []  # the rest is current
