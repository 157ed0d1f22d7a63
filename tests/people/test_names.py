"""Names are compared after Unicode NFC and case folding: enrol, rename, correct and lookups treat
``Zoë`` typed composed or decomposed (and in any case) as one person; the migration normalises
names stored before."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlmodel import select

from pipeline.config import get_settings
from pipeline.people.changes import correct_face, rename
from pipeline.people.enrolment import enroll
from pipeline.people.registry import PeopleError, get_person, name_key
from pipeline.store.db import session_scope, upgrade
from pipeline.store.models import Face, Person, Photo
from tests import images

COMPOSED = "Zo\u00eb"  # ë as one code point
DECOMPOSED = "Zoe\u0308"  # e + combining diaeresis


def test_keys_match_across_forms_and_case() -> None:
    assert COMPOSED != DECOMPOSED
    assert name_key(COMPOSED) == name_key(DECOMPOSED) == name_key("ZOE\u0308") == name_key(" zoë ")
    assert name_key("Straße") == name_key("STRASSE")
    assert name_key("Zoë") != name_key("Zoe")


def test_enrol_rename_correct_lookup_are_one_person(data_dir: Path, tmp_path: Path) -> None:
    upgrade()
    settings = get_settings()
    ref = images.save_jpeg(images.astronaut(), tmp_path / "ref.jpg")
    again = images.save_jpeg(images.flip(images.astronaut()), tmp_path / "ref2.jpg")
    other = images.save_jpeg(images.grace_hopper(), tmp_path / "grace.jpg")
    with session_scope() as session:
        first = enroll(session, settings, DECOMPOSED, [ref])
        second = enroll(session, settings, COMPOSED.upper(), [again])
        enroll(session, settings, "Grace", [other])
    assert first.created and not second.created and first.person_id == second.person_id
    with session_scope() as session:
        stored = session.exec(select(Person).where(Person.id == first.person_id)).one()
        assert stored.name == COMPOSED and unicodedata.is_normalized("NFC", stored.name)
        assert get_person(session, DECOMPOSED.lower()).id == first.person_id
        with pytest.raises(PeopleError, match="already exists"):
            rename(session, "Grace", DECOMPOSED)
        photo = Photo(path="/p.jpg", sha256="x", size=1, mtime=1.0, state="done", work="tag", attempts=1)
        session.add(photo)
        session.flush()
        face = Face(photo_id=photo.id, idx=0, x=0, y=0, w=1, h=1, det_score=1.0, embedding=bytes(512))
        session.add(face)
        session.flush()
        face_id = face.id
    with session_scope() as session:
        correct_face(session, face_id, name=DECOMPOSED)
    with session_scope() as session:
        assert session.get(Face, face_id).person_id == first.person_id  # type: ignore[union-attr]
        rename(session, COMPOSED, "Zoé")
    with session_scope() as session:
        assert get_person(session, "ZOE\u0301").name == "Zo\u00e9"


def test_migration_normalises_existing_names(data_dir: Path) -> None:
    url = get_settings().db_url
    upgrade(url, "0002")
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            for name in (COMPOSED, DECOMPOSED, "Ann"):  # stored by the old code: keys only lower-cased
                conn.execute(
                    text("INSERT INTO people (name, name_key, created_at) VALUES (:n, :k, '2024-01-01')"),
                    {"n": name, "k": name.lower()},
                )
        upgrade(url)
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT id, name, name_key FROM people ORDER BY id")).all()
    finally:
        engine.dispose()
    assert [r[1] for r in rows] == [COMPOSED, f"{COMPOSED} ({rows[1][0]})", "Ann"]  # both kept, nothing lost
    assert [r[2] for r in rows] == [name_key(r[1]) for r in rows]
