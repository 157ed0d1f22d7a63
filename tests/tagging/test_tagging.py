"""Tagging and selective re-matching with the real faces profile, in-process (no broker)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import select

from pipeline.config import get_settings
from pipeline.ingest.ingestor import Ingestor
from pipeline.people.changes import forget, merge, rename
from pipeline.people.enrolment import enroll
from pipeline.store.db import session_scope, upgrade
from pipeline.store.models import Caption, Face, Photo
from pipeline.tagging.batch import claim, process_photos
from tests import images


@pytest.fixture
def album(tmp_path: Path, data_dir: Path) -> dict[str, Path]:
    upgrade()
    folder = tmp_path / "album"
    a, g, c = images.astronaut(), images.grace_hopper(), images.camera()
    files = {
        "eileen": images.save_jpeg(a, folder / "eileen.jpg"),
        "grace": images.save_jpeg(images.flip(g), folder / "grace.jpg"),
        "pair": images.save_jpeg(images.side_by_side(a, g), folder / "pair.jpg"),
        "trio": images.save_jpeg(images.side_by_side(images.side_by_side(a, g), c), folder / "trio.jpg"),
        "carl": images.save_jpeg(c, folder / "carl.jpg"),
        "coffee": images.save_jpeg(images.no_face(), folder / "coffee.jpg"),
    }
    refs = tmp_path / "refs"
    files["ref_eileen"] = images.save_jpeg(images.crop_around_face(a, images.ASTRONAUT_FACE, 0.5), refs / "eileen.jpg")
    files["ref_grace"] = images.save_jpeg(images.crop_around_face(g, images.GRACE_HOPPER_FACE, 0.5), refs / "grace.jpg")
    files["ref_carl"] = images.save_jpeg(images.flip(c)[:, 100:], refs / "carl.jpg")
    return files


def _register(paths: list[Path]) -> dict[str, int]:
    ingestor = Ingestor(sender=None)
    ids = {}
    for path in paths:
        photo_id = ingestor.file_ready(path)
        assert photo_id is not None
        ids[path.stem] = photo_id
    return ids


def _summary(photo_id: int) -> tuple[str, list[str], str, list[int]]:
    with session_scope() as session:
        photo = session.get(Photo, photo_id)
        faces = session.exec(select(Face).where(Face.photo_id == photo_id).order_by(Face.x)).all()
        from pipeline.store.models import Person

        names = [session.get(Person, f.person_id).name if f.person_id else "?" for f in faces]  # type: ignore[union-attr]
        caption = session.exec(select(Caption.text).where(Caption.photo_id == photo_id)).one()
        return photo.state, names, caption, [f.id for f in faces]  # type: ignore[union-attr,misc]


def test_tag_then_enrol_third_person_rematches_only_affected(album: dict[str, Path]) -> None:
    settings = get_settings()
    with session_scope() as session:
        enroll(session, settings, "Eileen", [album["ref_eileen"]])
        enroll(session, settings, "Grace", [album["ref_grace"]])
    ids = _register([album[k] for k in ("eileen", "grace", "pair", "trio", "carl", "coffee")])
    outcome = process_photos(list(ids.values()), "task-1", settings)
    assert sorted(outcome.done) == sorted(ids.values())

    assert _summary(ids["eileen"])[1:3] == (["Eileen"], "Eileen.")
    assert _summary(ids["grace"])[1:3] == (["Grace"], "Grace.")
    assert _summary(ids["pair"])[1:3] == (["Eileen", "Grace"], "Eileen and Grace.")
    assert _summary(ids["trio"])[1:3] == (["Eileen", "Grace", "?"], "Eileen and Grace with 1 other person.")
    assert _summary(ids["carl"])[1:3] == (["?"], "1 unknown person.")
    assert _summary(ids["coffee"])[1:3] == ([], "No people.")
    before = {k: _summary(v)[3] for k, v in ids.items()}

    with session_scope() as session:
        result = enroll(session, settings, "Carl", [album["ref_carl"]])
    assert sorted(result.requeued_photo_ids) == sorted([ids["trio"], ids["carl"]])
    with session_scope() as session:
        states = {k: session.get(Photo, v).state for k, v in ids.items()}  # type: ignore[union-attr]
        assert states == {
            "eileen": "done",
            "grace": "done",
            "pair": "done",
            "trio": "queued",
            "carl": "queued",
            "coffee": "done",
        }
        assert session.get(Photo, ids["trio"]).work == "rematch"  # type: ignore[union-attr]

    outcome = process_photos(result.requeued_photo_ids, "task-2", settings)
    assert sorted(outcome.done) == sorted(result.requeued_photo_ids)
    assert _summary(ids["trio"])[1:3] == (["Eileen", "Grace", "Carl"], "Eileen, Grace and Carl.")
    assert _summary(ids["carl"])[1:3] == (["Carl"], "Carl.")
    # Re-matching kept the stored faces (same rows: the detector did not run again).
    assert {k: _summary(v)[3] for k, v in ids.items()} == before


def test_rename_merge_forget(album: dict[str, Path]) -> None:
    settings = get_settings()
    with session_scope() as session:
        enroll(session, settings, "Eileen", [album["ref_eileen"]])
        enroll(session, settings, "Grace", [album["ref_grace"]])
    ids = _register([album[k] for k in ("eileen", "pair", "coffee")])
    process_photos(list(ids.values()), "t1", settings)

    with session_scope() as session:
        requeued = rename(session, "eileen", "Eileen Collins")
    assert sorted(requeued) == sorted([ids["eileen"], ids["pair"]])
    process_photos(requeued, "t2", settings)
    assert _summary(ids["pair"])[2] == "Eileen Collins and Grace."

    with session_scope() as session:
        requeued = forget(session, "GRACE")
    assert requeued == [ids["pair"]]
    process_photos(requeued, "t3", settings)
    assert _summary(ids["pair"])[1:3] == (["Eileen Collins", "?"], "Eileen Collins with 1 other person.")

    with session_scope() as session:
        enroll(session, settings, "Hopper", [album["ref_grace"]])
        requeued = merge(session, "Hopper", "Eileen Collins")
    assert ids["pair"] in requeued


def test_duplicate_delivery_changes_nothing(album: dict[str, Path]) -> None:
    settings = get_settings()
    with session_scope() as session:
        enroll(session, settings, "Eileen", [album["ref_eileen"]])
    ids = _register([album["pair"]])
    process_photos([ids["pair"]], "t1", settings)
    first = _summary(ids["pair"])
    again = process_photos([ids["pair"]], "t1-duplicate", settings)
    assert again.skipped == [ids["pair"]] and not again.done
    assert _summary(ids["pair"]) == first


def test_photo_that_kills_its_worker_fails_after_max_attempts(album: dict[str, Path]) -> None:
    settings = get_settings()
    ids = _register([album["eileen"]])
    with session_scope() as session:
        for attempt in range(settings.max_attempts):  # each claim is a worker that died mid-photo
            photo, redelivered = claim(session, ids["eileen"], "same-task", settings)
            assert photo is not None and redelivered == (attempt > 0)
        photo, _ = claim(session, ids["eileen"], "same-task", settings)
        assert photo is None
        row = session.get(Photo, ids["eileen"])
        assert row.state == "failed" and "gave up after 3 attempts" in row.error  # type: ignore[union-attr,operator]


def test_broken_files_fail_with_reasons(tmp_path: Path, data_dir: Path) -> None:
    upgrade()
    folder = tmp_path / "bad"
    folder.mkdir()
    good = images.save_jpeg(images.astronaut(), tmp_path / "good.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(good[: len(good) // 3])
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "text.jpg").write_text("this is not an image\n" * 20)
    ids = _register(sorted(folder.iterdir()))
    outcome = process_photos(list(ids.values()), "t", get_settings())
    assert sorted(outcome.failed) == sorted(ids.values())
    with session_scope() as session:
        errors = {k: session.get(Photo, v).error for k, v in ids.items()}  # type: ignore[union-attr]
    assert "empty" in errors["empty"].lower()  # type: ignore[union-attr]
    assert "not an image" in errors["text"].lower() or "unrecognised" in errors["text"].lower()  # type: ignore[union-attr]
    assert "truncat" in errors["truncated"].lower() or "corrupt" in errors["truncated"].lower()  # type: ignore[union-attr]


def test_enrol_errors_are_clear(album: dict[str, Path]) -> None:
    from pipeline.people.registry import PeopleError

    settings = get_settings()
    with session_scope() as session, pytest.raises(PeopleError, match="no face found"):
        enroll(session, settings, "Nobody", [album["coffee"]])
    with session_scope() as session, pytest.raises(PeopleError, match=r"2 faces found; choose one with --face"):
        enroll(session, settings, "Who", [album["pair"]])
    with session_scope() as session:
        result = enroll(session, settings, "Grace", [album["pair"]], face=1)
        assert result.added_references == 1
        again = enroll(session, settings, "grace", [album["pair"]], face=1)
        assert again.person_id == result.person_id and again.skipped_duplicates == 1 and not again.created


def test_user_corrections_outrank_the_model(album: dict[str, Path]) -> None:
    from pipeline.people.changes import correct_face

    settings = get_settings()
    with session_scope() as session:
        enroll(session, settings, "Eileen", [album["ref_eileen"]])
        enroll(session, settings, "Grace", [album["ref_grace"]])
        enroll(session, settings, "Carl", [album["ref_carl"]])
    ids = _register([album["pair"]])
    process_photos([ids["pair"]], "t1", settings)
    _, names, _, face_ids = _summary(ids["pair"])
    assert names == ["Eileen", "Grace"]
    with session_scope() as session:
        assert correct_face(session, face_ids[1], not_name="Grace") == [ids["pair"]]
    process_photos([ids["pair"]], "t2", settings)
    assert _summary(ids["pair"])[1:3] == (["Eileen", "?"], "Eileen with 1 other person.")
    with session_scope() as session:
        correct_face(session, face_ids[1], name="Carl")
    process_photos([ids["pair"]], "t3", settings)
    assert _summary(ids["pair"])[1:3] == (["Eileen", "Carl"], "Eileen and Carl.")
    # A later re-match (here forced) keeps the user's choices although Grace scores higher.
    from sqlalchemy import update

    with session_scope() as session:
        session.execute(update(Photo).where(Photo.id == ids["pair"]).values(state="queued", work="rematch"))
    assert process_photos([ids["pair"]], "t4", settings).done == [ids["pair"]]
    assert _summary(ids["pair"])[1] == ["Eileen", "Carl"]


def test_readme_example_queries_run(album: dict[str, Path]) -> None:
    """The README's example SQL runs against a real tagged database and finds what it says."""
    import re

    from pipeline.store.readonly import run_readonly
    from tests.conftest import REPO

    settings = get_settings()
    with session_scope() as session:
        enroll(session, settings, "Susan", [album["ref_eileen"]])
        enroll(session, settings, "Mike", [album["ref_grace"]])
    ids = _register([album[k] for k in ("eileen", "pair", "trio", "carl", "coffee")])
    process_photos(list(ids.values()), "t", settings)
    block = re.search(r"```sql\n(.*?)```", (REPO / "README.md").read_text(), re.S).group(1)  # type: ignore[union-attr]
    statements = [s.strip() for s in block.split(";") if s.strip()]
    assert len(statements) == 6
    results = [run_readonly(settings, re.sub(r"--.*\n", "", s)) for s in statements]
    assert {Path(r[0]).name for r in results[0].rows} == {"eileen.jpg", "pair.jpg", "trio.jpg"}
    assert {Path(r[0]).name for r in results[1].rows} == {"pair.jpg", "trio.jpg"}
    assert {(r[1], r[2]) for r in results[2].rows} == {("Susan", 3), ("Mike", 2)}
    assert {Path(r[0]).name: r[1] for r in results[3].rows} == {"trio.jpg": 1, "carl.jpg": 1}
    assert results[4].rows == []
    assert results[5].rows == []  # the faces profile's captions never say "park"
