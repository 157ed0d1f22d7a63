"""pipeline.recognition.faces with the real YuNet + SFace networks on real photos (tests/images.py)."""

from __future__ import annotations

import multiprocessing
import os
import struct
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import pipeline.recognition.faces as faces_module
from pipeline.recognition.faces import (
    DetectedFace,
    FaceModel,
    embedding_from_bytes,
    embedding_to_bytes,
    get_face_model,
)
from tests import images

THRESHOLD = 0.363  # pipeline.config Settings.match_threshold default


@pytest.fixture(scope="module")
def model() -> FaceModel:
    return FaceModel()


@pytest.fixture(scope="module")
def astronaut_face(model: FaceModel) -> DetectedFace:
    found = model.detect(images.astronaut())
    assert len(found) == 1
    return found[0]


@pytest.fixture(scope="module")
def hopper_face(model: FaceModel) -> DetectedFace:
    found = model.detect(images.grace_hopper())
    assert len(found) == 1
    return found[0]


def _only_face(model: FaceModel, image: np.ndarray) -> DetectedFace:
    found = model.detect(image)
    assert len(found) == 1, f"expected one face, found {len(found)}"
    return found[0]


def _expected_box(face: tuple[int, int, int, int], image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    x, y, fw, fh = face
    return np.array([x / w, y / h, fw / w, fh / h])


# Detection and boxes -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make, face",
    [(images.astronaut, images.ASTRONAUT_FACE), (images.grace_hopper, images.GRACE_HOPPER_FACE)],
    ids=["astronaut", "grace_hopper"],
)
def test_one_face_with_a_sensible_box(model: FaceModel, make, face) -> None:
    image = make()
    found = _only_face(model, image)
    box = np.array(found.box)
    assert ((box >= 0) & (box <= 1)).all() and box[0] + box[2] <= 1 and box[1] + box[3] <= 1
    # Hand-checked face positions: the astronaut's face is in the upper middle-left, about
    # 0.18 of the width; Grace Hopper's in the upper middle, about 0.33 of the width.
    np.testing.assert_allclose(box, _expected_box(face, image), atol=0.02)
    assert 0.7 <= found.score <= 1.0
    assert found.embedding.shape == (128,) and found.embedding.dtype == np.float32
    assert np.linalg.norm(found.embedding) == pytest.approx(1.0, abs=1e-5)
    assert not found.embedding.flags.writeable


def test_no_face_in_a_photo_without_people(model: FaceModel) -> None:
    assert model.detect(images.no_face()) == []


@pytest.mark.parametrize("shape", [(1, 1), (5, 3), (20, 20), (31, 33), (0, 10)])
def test_tiny_and_empty_images_give_no_phantom_faces(model: FaceModel, shape) -> None:
    # YuNet alone returns inf/NaN rows with score 1.0 for such inputs now and then.
    for _ in range(5):
        assert model.detect(np.zeros((*shape, 3), np.uint8)) == []


def test_implausible_detector_rows_are_dropped() -> None:
    good = [10, 10, 20, 24, 15, 18, 25, 18, 20, 24, 16, 28, 24, 28, 0.9]
    rows = np.array(
        [
            good,
            [-np.inf, -2.3e31, np.inf, 0, *good[4:14], 1.0],  # seen from YuNet on a 13 x 6 input
            [1.8e32, 2.7e32, 0, 0, *good[4:14], 1.0],  # seen on a 46 x 32 input
            [10, 10, 20, 24, *good[4:14], np.nan],
            [10, 10, 1, 24, *good[4:14], 0.9],  # 1 px wide
            [90, 10, 20, 24, *good[4:14], 0.9],  # centre right of a 64 px wide image
        ],
        np.float32,
    )
    kept = faces_module._plausible_rows(rows, 64, 64)
    np.testing.assert_array_equal(kept, rows[:1])


def test_large_image_is_shrunk_for_the_detector_and_boxes_map_back(model: FaceModel, astronaut_face) -> None:
    big = images.rescale(images.astronaut(), 4.0)  # 2048 px > max_side 1280
    found = _only_face(model, big)
    np.testing.assert_allclose(found.box, astronaut_face.box, atol=0.01)
    assert float(found.embedding @ astronaut_face.embedding) > 0.9  # measured 0.968


@pytest.mark.parametrize("order, gap", [(("astronaut", "hopper"), 0), (("hopper", "astronaut"), 20)])
def test_faces_are_sorted_left_to_right(model: FaceModel, astronaut_face, hopper_face, order, gap) -> None:
    photos = {"astronaut": (images.astronaut, astronaut_face), "hopper": (images.grace_hopper, hopper_face)}
    (make_left, left), (make_right, right) = photos[order[0]], photos[order[1]]
    found = model.detect(images.side_by_side(make_left(), make_right(), gap=gap))
    assert len(found) == 2
    assert found[0].box[0] + found[0].box[2] <= 0.5 <= found[1].box[0]
    assert float(found[0].embedding @ left.embedding) > 0.9  # measured 0.986-1.000
    assert float(found[1].embedding @ right.embedding) > 0.9
    assert float(found[0].embedding @ right.embedding) < THRESHOLD


# Recognition ---------------------------------------------------------------------------------


def test_different_people_score_below_threshold(astronaut_face, hopper_face) -> None:
    assert float(astronaut_face.embedding @ hopper_face.embedding) < THRESHOLD  # measured 0.181


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(images.flip, id="flip"),  # 0.948 / 0.955
        pytest.param(lambda img, face: images.crop_around_face(img, face, 0.5), id="crop-0.5"),  # 0.942 / 0.974
        pytest.param(lambda img, face: images.crop_around_face(img, face, 0.0), id="crop-box"),  # 0.869 / 0.930
    ],
)
def test_same_person_after_an_edit_scores_above_threshold(model, astronaut_face, hopper_face, edit) -> None:
    for make, face, reference, other in [
        (images.astronaut, images.ASTRONAUT_FACE, astronaut_face, hopper_face),
        (images.grace_hopper, images.GRACE_HOPPER_FACE, hopper_face, astronaut_face),
    ]:
        image = make()
        edited = edit(image) if edit is images.flip else edit(image, face)
        found = _only_face(model, edited)
        assert float(found.embedding @ reference.embedding) > THRESHOLD
        assert float(found.embedding @ other.embedding) < THRESHOLD


def test_jpeg_round_trip_keeps_the_identity(model, astronaut_face, tmp_path: Path) -> None:
    path = images.save_jpeg(images.astronaut(), tmp_path / "a" / "astronaut.jpg", quality=90)
    found = _only_face(model, images.load_rgb(path))
    assert float(found.embedding @ astronaut_face.embedding) > 0.95  # measured 0.995


def test_small_faces(model, hopper_face) -> None:
    # 32 px: found in the first pass and named (measured 0.815).
    found = _only_face(model, images.small_face_scene(images.grace_hopper(), images.GRACE_HOPPER_FACE, 32))
    assert float(found.embedding @ hopper_face.embedding) > THRESHOLD
    # 8 px: only the 2x second pass finds it; too small to name (measured 0.223).
    assert len(model.detect(images.small_face_scene(images.grace_hopper(), images.GRACE_HOPPER_FACE, 8))) == 1


def test_second_pass_off_when_image_cannot_be_enlarged() -> None:
    scene = images.small_face_scene(images.grace_hopper(), images.GRACE_HOPPER_FACE, 8)
    assert FaceModel(max_side=640).detect(scene) == []  # 640 px already: no enlarged pass


# Input validation and serialisation ----------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [np.zeros((64, 64), np.uint8), np.zeros((64, 64, 4), np.uint8), np.zeros((64, 64, 3), np.float32)],
    ids=["grey", "rgba", "float"],
)
def test_rejects_anything_but_rgb_uint8(model: FaceModel, bad: np.ndarray) -> None:
    with pytest.raises(ValueError):
        model.detect(bad)


def test_embedding_bytes_round_trip(astronaut_face) -> None:
    data = embedding_to_bytes(astronaut_face.embedding)
    assert len(data) == 512
    assert data[:4] == struct.pack("<f", float(astronaut_face.embedding[0]))  # float32 little-endian
    back = embedding_from_bytes(data)
    assert back.dtype == np.float32 and back.flags.writeable
    np.testing.assert_array_equal(back, astronaut_face.embedding)
    with pytest.raises(ValueError):
        embedding_from_bytes(data[:-4])
    with pytest.raises(ValueError):
        embedding_to_bytes(np.zeros(127, np.float32))


# Loading: lazy, once, thread-safe, fork-aware ------------------------------------------------


def test_import_and_construction_load_nothing() -> None:
    code = (
        "import sys; sys.modules['cv2'] = None\n"  # any `import cv2` now fails
        "import pipeline.recognition.faces as f\n"
        "m = f.get_face_model()\n"
        "assert m is f.get_face_model() and not m.loaded\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_loads_once_under_concurrent_use(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real_open = faces_module._open

    def counting_open(*args, **kwargs):
        calls.append(threading.get_ident())
        return real_open(*args, **kwargs)

    monkeypatch.setattr(faces_module, "_open", counting_open)
    model = FaceModel()
    assert not model.loaded and calls == []
    photo = images.side_by_side(images.astronaut(), images.grace_hopper())
    results: list[list[DetectedFace]] = []
    threads = [threading.Thread(target=lambda: results.append(model.detect(photo))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    model.load()
    assert len(calls) == 1 and model.loaded
    assert [len(r) for r in results] == [2, 2, 2, 2]
    for result in results[1:]:  # the lock keeps concurrent calls from mixing detector state
        np.testing.assert_array_equal(result[1].embedding, results[0][1].embedding)


def test_warm_up_beside_the_first_photo_loads_once_and_changes_no_result(
    model: FaceModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker warms up in a thread while its first task may already run."""
    photo = images.side_by_side(images.astronaut(), images.grace_hopper())
    expected = model.detect(photo)  # a model that never warmed up
    calls: list[int] = []
    real_open = faces_module._open
    monkeypatch.setattr(faces_module, "_open", lambda *a, **k: calls.append(1) or real_open(*a, **k))
    fresh = FaceModel()
    results: list[list[DetectedFace]] = []
    threads = [
        threading.Thread(target=fresh.warm_up),
        threading.Thread(target=lambda: results.append(fresh.detect(photo))),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    fresh.warm_up()  # a second call does nothing more
    assert calls == [1] and fresh.loaded and fresh._warm
    [found] = results
    assert [f.box for f in found] == [f.box for f in expected]
    for got, want in zip(found, expected, strict=True):
        np.testing.assert_array_equal(got.embedding, want.embedding)


def _child(model: FaceModel, queue) -> None:  # runs in a forked process
    before = model.loaded
    found = model.detect(images.astronaut())
    queue.put((before, model.loaded, model._pid == os.getpid(), len(found)))


@pytest.mark.skipif(sys.platform != "linux", reason="fork start method")
def test_reloads_after_fork(model: FaceModel) -> None:
    model.load()
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    process = context.Process(target=_child, args=(model, queue))
    process.start()
    outcome = queue.get(timeout=60)
    process.join(timeout=60)
    assert outcome == (False, True, True, 1)
    assert model.loaded and model._pid == os.getpid()


def test_get_face_model_is_a_singleton() -> None:
    assert get_face_model() is get_face_model()
    assert get_face_model().version == "yunet-2023mar-int8bq+sface-2021dec-int8bq"
