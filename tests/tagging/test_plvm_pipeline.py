"""The PLVM code path inside the pipeline, on the tiny random bundle (tests only).

Enrolment computes each person's Aligner output once and stores it; the worker loads it from the
database and never runs the Aligner; captions, answers and recognition scores land in the same
tables as the faces profile, marked with the model version.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlmodel import select

from tests import images
from tests.conftest import cli, flat


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tiny") / "bundle"
    proc = cli("models", "tiny", str(folder))
    assert "random weights" in proc.stdout
    return folder


@pytest.fixture
def tiny_env(data_dir: Path, tiny_bundle: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    from pipeline.config import get_settings

    monkeypatch.setenv("PIPELINE_PROFILE", "tiny")
    monkeypatch.setenv("PIPELINE_TINY_BUNDLE", str(tiny_bundle))
    monkeypatch.setenv("PIPELINE_MAX_NEW_TOKENS", "6")
    monkeypatch.setenv("PIPELINE_QUESTIONS", '["Who is in this photo?", "What is Eileen doing?"]')
    get_settings.cache_clear()
    return {k: v for k, v in os.environ.items() if k.startswith("PIPELINE_")}


@pytest.fixture
def refs(tmp_path: Path) -> dict[str, Path]:
    a, g = images.astronaut(), images.grace_hopper()
    return {
        "Eileen": images.save_jpeg(images.crop_around_face(a, images.ASTRONAUT_FACE, 0.5), tmp_path / "refs" / "e.jpg"),
        "Grace": images.save_jpeg(
            images.crop_around_face(g, images.GRACE_HOPPER_FACE, 0.5), tmp_path / "refs" / "g.jpg"
        ),
    }


def test_enrol_once_then_tag_without_the_aligner(
    tiny_env: dict[str, str], refs: dict[str, Path], tmp_path: Path
) -> None:
    from pipeline import profiles
    from pipeline.config import get_settings
    from pipeline.ingest.ingestor import Ingestor
    from pipeline.people.enrolment import enroll
    from pipeline.store.db import session_scope, upgrade
    from pipeline.store.models import Answer, Caption, Concept, Face, PersonScore, Photo
    from pipeline.tagging.batch import process_photos

    settings = get_settings()
    upgrade()
    with session_scope() as session:
        for name, ref in refs.items():
            enroll(session, settings, name, [ref])
    with session_scope() as session:
        concepts = session.exec(select(Concept)).all()
        assert len(concepts) == 2
        engine = profiles.get_profile(settings).engine  # type: ignore[attr-defined]
        version = engine.model_version
        for c in concepts:
            assert c.model_version == version and version.startswith("tiny-random:")
            assert len(c.tokens) == c.n_tokens * c.dim * 2 and len(c.lm_weight) == c.dim * 2  # float16
        assert engine.reference_loaded and not engine.lvlm_loaded, "enrolment loads no LLaVA"

    profiles._cache.clear()  # a worker process starts with nothing loaded
    photo = images.save_jpeg(
        images.side_by_side(images.astronaut(), images.grace_hopper()), tmp_path / "album" / "pair.jpg"
    )
    photo_id = Ingestor(sender=None).file_ready(photo)
    assert photo_id is not None
    outcome = process_photos([photo_id], "t1", settings)
    assert outcome.done == [photo_id]
    worker_engine = profiles.get_profile(settings).engine  # type: ignore[attr-defined]
    assert worker_engine.lvlm_loaded and not worker_engine.reference_loaded, "tagging never runs DINOv2 or the Aligner"

    with session_scope() as session:
        row = session.get(Photo, photo_id)
        assert row.state == "done" and row.profile == "tiny" and row.model_version == version  # type: ignore[union-attr]
        caption = session.exec(select(Caption).where(Caption.photo_id == photo_id)).one()
        assert caption.model_version == version and caption.profile == "tiny" and isinstance(caption.text, str)
        answers = session.exec(select(Answer).where(Answer.photo_id == photo_id)).all()
        assert {a.question for a in answers} == {"Who is in this photo?", "What is Eileen doing?"}
        scores = session.exec(select(PersonScore).where(PersonScore.photo_id == photo_id)).all()
        assert len(scores) == 2 and all(0.0 <= s.score <= 1.0 and s.model_version == version for s in scores)
        faces = session.exec(select(Face).where(Face.photo_id == photo_id).order_by(Face.x)).all()
        assert [f.person_id is not None for f in faces] == [True, True], "names stay grounded on faces"
        assert all(f.evidence_score is not None for f in faces), "both kinds of evidence are stored"


def test_end_to_end_through_redis_and_ask(
    tiny_env: dict[str, str], refs: dict[str, Path], tmp_path: Path, data_dir: Path
) -> None:
    for name, ref in refs.items():
        cli("enroll", "--name", name, str(ref), env=tiny_env)
    album = tmp_path / "album"
    images.save_jpeg(images.side_by_side(images.grace_hopper(), images.astronaut()), album / "pair.jpg")
    images.save_jpeg(images.no_face(), album / "coffee.jpg")
    proc = cli("run", str(album), "--until-idle", env=tiny_env, timeout=300)
    assert "done 2" in proc.stdout and "failed 0" in proc.stdout, proc.stdout
    rows = cli(
        "sql", "--csv", "SELECT count(*) AS captions, min(model_version) AS version FROM captions", env=tiny_env
    ).stdout
    count, version = rows.splitlines()[1].split(",")
    assert count == "2" and version.startswith("tiny-random:")
    answers = cli("sql", "--csv", "SELECT count(*) FROM answers", env=tiny_env).stdout.splitlines()[1]
    assert answers == "4"

    asked = cli("ask", str(album / "pair.jpg"), "What is Eileen wearing?", env=tiny_env)
    assert "concepts: Eileen" in flat(asked.stderr) and "random weights" in flat(asked.stderr)
    assert asked.stdout.strip() != "" or asked.returncode == 0
    faces_profile = cli("--profile", "faces", "ask", str(album / "pair.jpg"), "Who?", env=tiny_env, check=False)
    assert faces_profile.returncode == 1 and "plvm profile" in flat(faces_profile.stderr)
