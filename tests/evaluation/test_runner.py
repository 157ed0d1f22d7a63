"""The benchmark runners with real models: faces (YuNet + SFace) on real photos, tiny PLVM on toy data."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from pipeline.config import Settings
from pipeline.evaluation.metrics import RecognitionRecord, recognition_report
from pipeline.evaluation.recognition import (
    NO_FACE_SCORE,
    EvaluationError,
    evaluate_recognition,
    load_dataset,
    score_recognition,
)
from pipeline.evaluation.vqa import evaluate_vqa
from pipeline.photos.decode import decode_photo
from tests import images

# --- shared data -----------------------------------------------------------------------------

NO_FACE_QUERY = "astronaut/query_img4.jpg"
CORRUPT_QUERY = "grace_hopper/query_img4.jpg"


def build_face_dataset(root: Path) -> Path:
    """Two real identities (reference = a face crop; queries = flip and other crops), plus one query
    without a face (astronaut's 4th) and one corrupt file (Grace Hopper's 4th). Returns ``root``."""
    a, g = images.astronaut(), images.grace_hopper()
    for name, photo, face in (("astronaut", a, images.ASTRONAUT_FACE), ("grace_hopper", g, images.GRACE_HOPPER_FACE)):
        images.save_png(images.crop_around_face(photo, face, 0.5), root / name / "ref_img.png")
        images.save_jpeg(images.flip(photo), root / name / "query_img1.jpg")
        images.save_jpeg(images.crop_around_face(photo, face, 1.0), root / name / "query_img2.jpg")
        images.save_jpeg(images.crop_around_face(photo, face, 0.25), root / name / "query_img3.jpg")
    images.save_jpeg(images.no_face(), root / NO_FACE_QUERY)
    (root / CORRUPT_QUERY).write_bytes(b"\xff\xd8 this is not a JPEG")
    return root


def faces_settings(tmp_path: Path) -> Settings:
    return Settings(profile="faces", data_dir=tmp_path / "data")


@pytest.fixture
def counted_detect(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, ...]]:
    """Counts calls of the process's face model ``detect`` (the real method still runs)."""
    from pipeline.recognition.faces import get_face_model

    model = get_face_model()
    real = model.detect
    calls: list[tuple[int, ...]] = []

    def counting(image: np.ndarray):  # type: ignore[no-untyped-def]
        calls.append(image.shape)
        return real(image)

    monkeypatch.setattr(model, "detect", counting)
    return calls


@pytest.fixture(scope="module")
def tiny_settings(tiny_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        profile="tiny",
        tiny_bundle=tiny_bundle,
        data_dir=tmp_path_factory.mktemp("eval-data"),
        device="cpu",
        dtype="float32",
    )


@pytest.fixture(scope="module")
def tiny_engine(tiny_settings: Settings):  # type: ignore[no-untyped-def]
    from pipeline.plvm.engine import PlvmEngine

    return PlvmEngine.from_settings(tiny_settings)


@pytest.fixture(scope="module")
def toy_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 toy identities x 2 queries, plus the multiple-choice file ``vqa.json``."""
    from pipeline.datasets.toy import make_toy_identities, make_toy_vqa

    root = make_toy_identities(tmp_path_factory.mktemp("toy") / "ids", n_identities=3, n_queries=2, seed=0, size=64)
    make_toy_vqa(root, per_identity=4, seed=0)
    return root


def _pixels(path: Path) -> np.ndarray:
    return np.asarray(decode_photo(path, 10**8).image)


# --- faces -----------------------------------------------------------------------------------


def test_faces_profile_on_real_photos(tmp_path: Path, counted_detect: list) -> None:
    root = build_face_dataset(tmp_path / "rec")
    report = evaluate_recognition(faces_settings(tmp_path), root, progress=False)

    # Every decodable image went through the detector exactly once: 2 references + 7 queries
    # (the corrupt file never reaches it).
    assert len(counted_detect) == 9
    assert (report.n_identities, report.n_queries, report.n_pairs) == (2, 7, 14)
    assert report.threshold == pytest.approx(0.363)
    # Every pair with a face is right; the face-less query is astronaut's one miss.
    assert (report.tp, report.fp, report.tn, report.fn) == (6, 0, 7, 1)
    assert report.positive_accuracy == pytest.approx(6 / 7) and report.negative_accuracy == 1.0
    assert report.precision == 1.0
    assert [(r.name, r.positive_accuracy) for r in report.per_identity] == [("astronaut", 0.75), ("grace_hopper", 1.0)]
    reasons = {f.path: f.reason for f in report.failures}
    assert set(reasons) == {NO_FACE_QUERY, CORRUPT_QUERY}
    assert "no face" in reasons[NO_FACE_QUERY] and "scored 'no'" in reasons[NO_FACE_QUERY]
    assert "cannot be decoded" in reasons[CORRUPT_QUERY]
    assert any("without a face is kept and scored" in note for note in report.notes)
    # Score-based: sweep, best threshold and ROC are there; the best threshold separates all face pairs.
    assert report.sweep and report.roc and report.auc is not None
    assert report.best is not None and report.best.negative_accuracy == 1.0
    assert report.best.positive_accuracy == pytest.approx(6 / 7)


def test_faces_per_pair_scores_and_threshold(tmp_path: Path) -> None:
    root = build_face_dataset(tmp_path / "rec")
    run = score_recognition(faces_settings(tmp_path), root, progress=False)
    faceless = [r for r in run.records if r.query == NO_FACE_QUERY]
    assert len(faceless) == 2 and all(r.score == NO_FACE_SCORE for r in faceless)
    assert not any(r.query == CORRUPT_QUERY for r in run.records)
    with_face = [r for r in run.records if r.query != NO_FACE_QUERY]
    assert min(r.score for r in with_face if r.is_positive) > 0.8  # same person: 0.87-0.98 in tests/images.py
    assert max(r.score for r in with_face if not r.is_positive) < 0.3  # the other person: <= 0.21
    clean = recognition_report(with_face, threshold=run.threshold)
    assert (clean.positive_accuracy, clean.negative_accuracy) == (1.0, 1.0)
    # An explicit threshold decides instead of match_threshold.
    strict = evaluate_recognition(faces_settings(tmp_path), root, threshold=0.99, progress=False)
    assert strict.threshold == 0.99 and strict.tp == 0 and strict.negative_accuracy == 1.0


def test_faces_reference_edge_cases(tmp_path: Path, counted_detect: list) -> None:
    a, g = images.astronaut(), images.grace_hopper()
    root = tmp_path / "rec"
    images.save_png(images.crop_around_face(a, images.ASTRONAUT_FACE, 0.5), root / "astronaut" / "ref_img.png")
    images.save_jpeg(images.flip(a), root / "astronaut" / "query_img1.jpg")
    # Grace Hopper's reference shows both people, the astronaut small: her dominant face is used
    # (the rule of `pipeline enroll`).
    images.save_png(images.side_by_side(g, images.rescale(a, 0.4)), root / "grace_hopper" / "ref_img.png")
    images.save_jpeg(images.flip(g), root / "grace_hopper" / "query_img1.jpg")
    # A reference without a face: that identity can never be recognised.
    images.save_png(images.no_face(), root / "nobody" / "ref_img.png")
    images.save_jpeg(images.crop_around_face(g, images.GRACE_HOPPER_FACE, 1.0), root / "nobody" / "query_img1.jpg")
    (root / "empty").mkdir()  # a folder without images: listed as a dataset problem

    run = score_recognition(faces_settings(tmp_path), root, progress=False)
    assert len(counted_detect) == 6
    assert any("grace_hopper/ref_img.png: 2 faces" in note and "dominant" in note for note in run.notes)
    assert any("dataset problem" in note and "empty" in note for note in run.notes)
    assert any(f.path == "nobody/ref_img.png" and "no face in the reference" in f.reason for f in run.failures)
    score = {(r.identity, r.query): r.score for r in run.records}
    assert score["grace_hopper", "grace_hopper/query_img1.jpg"] > 0.8
    assert score["grace_hopper", "astronaut/query_img1.jpg"] < 0.3
    assert all(s == NO_FACE_SCORE for (identity, _), s in score.items() if identity == "nobody")


def test_missing_and_empty_datasets(tmp_path: Path) -> None:
    with pytest.raises(EvaluationError, match="does not exist"):
        load_dataset(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(EvaluationError, match="no identity folders"):
        evaluate_recognition(faces_settings(tmp_path), tmp_path / "empty", progress=False)
    images.save_jpeg(images.astronaut(), tmp_path / "bad" / "a" / "query_img1.jpg")
    (tmp_path / "bad" / "b").mkdir()
    with pytest.raises(EvaluationError, match=r"(?s)a: no reference image.*b: no reference image"):
        load_dataset(tmp_path / "bad")


# --- tiny PLVM ---------------------------------------------------------------------------------


def _spy(monkeypatch: pytest.MonkeyPatch, engine, method: str) -> list[dict]:  # type: ignore[no-untyped-def]
    """Record the arguments and results of ``engine.<method>`` (the real method still runs)."""
    real = getattr(engine, method)
    calls: list[dict] = []

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        result = real(*args, **kwargs)
        calls.append({"args": args, "result": result})
        return result

    monkeypatch.setattr(engine, method, spy)
    return calls


def test_tiny_recognition_one_call_per_query(tiny_settings, tiny_engine, toy_root, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import torch

    dataset = load_dataset(toy_root)
    encodes = _spy(monkeypatch, tiny_engine, "encode_references")
    batches = _spy(monkeypatch, tiny_engine, "recognition_scores_batch")
    report = evaluate_recognition(tiny_settings, toy_root, engine=tiny_engine, progress=False, queries_per_call=1)

    # N = 3 references encoded once each; M = 6 queries -> 6 calls, each against all 3 identities.
    assert len(encodes) == 3 and all(len(c["args"][0]) == 1 for c in encodes)
    assert len(batches) == dataset.n_queries == 6
    assert all(len(c["args"][0]) == 1 and len(c["args"][1]) == 3 for c in batches)

    # Rebuild every pair from what the engine saw: query by pixels, identity by its concept.
    query_pixels = {q: _pixels(q) for identity in dataset.identities for q in identity.queries}
    owner_of = {q: identity.name for identity in dataset.identities for q in identity.queries}
    concepts = {
        i.name: tiny_engine.encode_references([decode_photo(i.reference, 10**8).image]) for i in dataset.identities
    }
    expected: list[RecognitionRecord] = []
    seen: list[Path] = []
    for call in batches:
        (image,), people = call["args"]
        (query,) = [
            q
            for q, px in query_pixels.items()
            if px.shape == np.asarray(image).shape and np.array_equal(px, np.asarray(image))
        ]
        seen.append(query)
        for person, score in zip(people, call["result"][0], strict=True):
            (name,) = [n for n, c in concepts.items() if torch.allclose(c.tokens, person.concept.tokens, atol=1e-6)]
            expected.append(RecognitionRecord(name, query, owner_of[query], name == owner_of[query], float(score)))
    assert sorted(seen) == sorted(query_pixels)  # every query exactly once

    threshold = tiny_settings.recognition_threshold
    tp = sum(r.is_positive and r.score >= threshold for r in expected)
    fp = sum(not r.is_positive and r.score >= threshold for r in expected)
    assert (report.n_identities, report.n_queries, report.n_pairs) == (3, 6, 18)
    assert (report.tp, report.fp, report.tn + report.fp, report.tp + report.fn) == (tp, fp, 12, 6)
    again = recognition_report(expected, threshold=threshold)
    assert report.weighted_accuracy == pytest.approx(again.weighted_accuracy, nan_ok=True)
    assert report.best_threshold == pytest.approx(again.best_threshold)
    assert report.auc == pytest.approx(again.auc)
    assert report.sweep and report.roc and not report.failures
    assert any("random weights" in note for note in report.notes)


def test_tiny_recognition_batches_queries_by_default(tiny_settings, tiny_engine, toy_root, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    single = score_recognition(tiny_settings, toy_root, engine=tiny_engine, progress=False, queries_per_call=1)
    batches = _spy(monkeypatch, tiny_engine, "recognition_scores_batch")
    batched = score_recognition(tiny_settings, toy_root, engine=tiny_engine, progress=False)
    # max_batch 16 rows // 3 identities = 5 queries per call: 6 queries -> 2 calls.
    assert [len(c["args"][0]) for c in batches] == [5, 1]
    by_pair = {(r.identity, r.query): r.score for r in single.records}
    assert len(batched.records) == len(by_pair) == 18
    for record in batched.records:
        assert record.score == pytest.approx(by_pair[record.identity, record.query], abs=1e-4)


def test_tiny_engine_built_from_settings(tiny_settings, toy_root) -> None:  # type: ignore[no-untyped-def]
    report = evaluate_recognition(tiny_settings, toy_root, progress=False)
    assert report.n_pairs == 18 and report.threshold == tiny_settings.recognition_threshold


# --- multiple choice -------------------------------------------------------------------------


def test_tiny_vqa_picks_the_argmax_of_option_loglik(tiny_settings, tiny_engine, toy_root, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from pipeline.plvm.embeddings import Person

    raw = json.loads((toy_root / "vqa.json").read_text())
    encodes = _spy(monkeypatch, tiny_engine, "encode_references")
    asked = _spy(monkeypatch, tiny_engine, "option_loglik")
    report = evaluate_vqa(tiny_settings, toy_root / "vqa.json", toy_root, engine=tiny_engine, progress=False)
    monkeypatch.undo()

    n_visual = sum(1 for item in raw if "query_img" in item)
    assert report["n_items"] == len(raw) == 12
    assert (report["n_visual"], report["n_text"]) == (n_visual, len(raw) - n_visual) == (6, 6)
    assert 0.0 <= report["accuracy"] <= 1.0 and report["n_unanswered"] == 0 and report["random_weights"]
    assert len(encodes) == len({item["ref_img"] for item in raw}) == 3  # one concept per reference
    assert sum(call["args"][0] is None for call in asked) == len(raw) - n_visual  # text-only: no image

    concepts = {
        item["ref_img"]: tiny_engine.encode_references([decode_photo(toy_root / item["ref_img"], 10**8).image])
        for item in raw
    }
    correct = 0
    for item, row in zip(raw, report["items"], strict=True):
        keys = list(item["multiple_choice"])
        image = decode_photo(toy_root / item["query_img"], 10**8).image if "query_img" in item else None
        direct = tiny_engine.option_loglik(
            image,
            item["question"],
            [item["multiple_choice"][k] for k in keys],
            [Person("sks", concepts[item["ref_img"]])],
        )
        assert row["predicted"] == keys[int(np.argmax(direct))]
        assert [row["loglik"][k] for k in keys] == pytest.approx(direct, abs=1e-3)
        assert row["text_only"] == ("query_img" not in item) and row["correct"] == item["correct_answer"]
        correct += row["predicted"] == item["correct_answer"]
    assert report["accuracy"] == pytest.approx(correct / len(raw))
    assert report["n_correct"] == correct
    assert report["visual_accuracy"] is not None and report["text_accuracy"] is not None
    assert math.isclose(
        report["accuracy"], (report["visual_accuracy"] * 6 + report["text_accuracy"] * 6) / 12, abs_tol=1e-9
    )
    json.dumps(report, allow_nan=False)


def test_vqa_refuses_the_faces_profile(tmp_path: Path, toy_root: Path) -> None:
    with pytest.raises(EvaluationError, match="faces profile cannot answer questions"):
        evaluate_vqa(faces_settings(tmp_path), toy_root / "vqa.json", toy_root, progress=False)


def test_vqa_lists_an_undecodable_image(tiny_settings, tiny_engine, toy_root, tmp_path) -> None:  # type: ignore[no-untyped-def]
    raw = json.loads((toy_root / "vqa.json").read_text())[:2]  # item 0 has a photo, item 1 is text-only
    assert "query_img" in raw[0] and "query_img" not in raw[1]
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    raw[0]["query_img"] = str(broken)
    for item in raw:
        item["ref_img"] = str(toy_root / item["ref_img"])
    (tmp_path / "q.json").write_text(json.dumps(raw))
    report = evaluate_vqa(tiny_settings, tmp_path / "q.json", engine=tiny_engine, progress=False)
    assert report["n_unanswered"] == 1 and report["items"][0]["predicted"] is None
    assert report["items"][1]["predicted"] in raw[1]["multiple_choice"]
    assert [f["path"] for f in report["failures"]] == [str(broken)]


def test_engine_being_trained_needs_no_checkpoint_file(tiny_settings, tiny_engine, toy_root, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The Aligner training loop passes an engine whose Aligner has no file yet: nothing may hash it."""
    from pipeline.plvm.checkpoint import missing_aligner_error

    class Training:
        def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
            return getattr(tiny_engine, name)

        @property
        def model_version(self) -> str:
            raise missing_aligner_error(tmp_path / "not-saved-yet.ckpt")

    report = evaluate_recognition(tiny_settings, toy_root, engine=Training(), progress=False)
    assert report.n_pairs == 18
    answers = evaluate_vqa(tiny_settings, toy_root / "vqa.json", toy_root, engine=Training(), progress=False)
    assert answers["model_version"] == "tiny:unsaved-aligner" and answers["n_items"] == 12


def test_tiny_recognition_on_the_yollava_layout_uses_every_reference(
    tiny_settings, tiny_engine, toy_root, tmp_path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """ref_img.png + 0.png, 1.png queries; a second reference ref_img0.png is encoded too."""
    import shutil

    dataset = load_dataset(toy_root)
    root = tmp_path / "yollava"
    for identity in dataset.identities:
        folder = root / identity.name
        folder.mkdir(parents=True)
        shutil.copy(identity.reference, folder / "ref_img.png")
        for i, query in enumerate(identity.queries):
            shutil.copy(query, folder / f"{i}.png")
    first = dataset.identities[0]
    shutil.copy(first.queries[0], root / first.name / "ref_img0.png")  # a second reference
    encodes = _spy(monkeypatch, tiny_engine, "encode_references")
    report = evaluate_recognition(tiny_settings, root, engine=tiny_engine, progress=False)
    assert (report.n_identities, report.n_queries, report.n_pairs) == (3, 6, 18) and not report.failures
    assert sorted(len(call["args"][0]) for call in encodes) == [1, 1, 2]


def test_tiny_vqa_scores_items_without_sks_in_the_question(tiny_settings, tiny_engine, toy_root, tmp_path) -> None:  # type: ignore[no-untyped-def]
    raw = json.loads((toy_root / "vqa.json").read_text())[:2]
    raw[0]["question"] = "Who is in the photo?"
    raw[0]["multiple_choice"] = {"A": "<sks>", "B": "the person next to <sks>"}
    raw[0]["correct_answer"] = "A"
    raw[1]["question"] = "What colour is the sky?"
    for item in raw:
        item["ref_img"] = str(toy_root / item["ref_img"])
        if "query_img" in item:
            item["query_img"] = str(toy_root / item["query_img"])
    (tmp_path / "odd.json").write_text(json.dumps(raw))
    report = evaluate_vqa(tiny_settings, tmp_path / "odd.json", engine=tiny_engine, progress=False)
    assert report["n_items"] == 2 and report["n_unanswered"] == 0
    assert all(row["predicted"] is not None for row in report["items"])
    assert [line.split(":")[0] for line in report["odd_items"]] == ["item 0", "item 1"]
    assert "only in the options" in report["odd_items"][0] and "nowhere" in report["odd_items"][1]
