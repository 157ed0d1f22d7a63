"""Close-ups and duplicate detections with the real YuNet + SFace: every face once.

Close-up crops of the public-domain faces (the face box filling 70-100 % of the frame, enlarged
4x as a phone portrait would be) must be found once, with the right identity; overlapping
detections are merged by one rule; a reference picks its only or dominant face.
"""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.recognition.faces import DetectedFace, FaceModel
from pipeline.recognition.overlap import SAME_FACE_OVERLAP, containment, keep_distinct_faces
from pipeline.recognition.reference_face import describe_faces, dominant_face
from tests import images

THRESHOLD = 0.363


@pytest.fixture(scope="module")
def model() -> FaceModel:
    return FaceModel()


@pytest.fixture(scope="module")
def reference(model: FaceModel) -> dict[str, np.ndarray]:
    return {
        "astronaut": model.detect(images.astronaut())[0].embedding,
        "grace_hopper": model.detect(images.grace_hopper())[0].embedding,
    }


def close_up(name: str, fill: float, enlarge: float = 4.0) -> np.ndarray:
    """A square crop centred on the face whose side is the face box's longer side / ``fill``,
    enlarged ``enlarge`` times."""
    image, (x, y, w, h) = (
        (images.astronaut(), images.ASTRONAUT_FACE)
        if name == "astronaut"
        else (images.grace_hopper(), images.GRACE_HOPPER_FACE)
    )
    side = round(max(w, h) / fill)
    cx, cy = x + w // 2, y + h // 2
    return images.rescale(images.crop(image, (cx - side // 2, cy - side // 2, side, side)), enlarge)


@pytest.mark.parametrize("fill", [1.0, 0.9, 0.8, 0.7])
@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_close_up_found_once_with_its_identity(model: FaceModel, reference, name: str, fill: float) -> None:
    found = model.detect(close_up(name, fill))
    assert len(found) == 1, [f.box for f in found]
    assert found[0].box[2] >= 0.5  # the face, not a part of it
    assert float(found[0].embedding @ reference[name]) > 0.8
    other = "astronaut" if name == "grace_hopper" else "grace_hopper"
    assert float(found[0].embedding @ reference[other]) < THRESHOLD


def test_without_the_close_up_pass_large_faces_are_missed(reference) -> None:
    """The failure the close-up pass fixes (so this test can fail if the pass stops mattering)."""
    plain = FaceModel(closeup_side=0)
    results = [plain.detect(close_up("grace_hopper", fill)) for fill in (1.0, 0.9, 0.8)]
    right = [[f for f in found if float(f.embedding @ reference["grace_hopper"]) > THRESHOLD] for found in results]
    assert not all(len(r) == 1 for r in right)


def test_close_up_pass_keeps_two_people_and_small_faces(model: FaceModel) -> None:
    pair = images.side_by_side(images.astronaut(), images.grace_hopper(), gap=20)
    assert len(model.detect(pair)) == 2
    scene = images.small_face_scene(images.astronaut(), images.ASTRONAUT_FACE, 32)
    assert len(model.detect(scene)) == 1


def test_overlapping_boxes_merge_by_one_rule() -> None:
    big = np.array([10.0, 10.0, 100.0, 120.0])
    inner = np.array([40.0, 30.0, 40.0, 50.0])  # fully inside: one face
    neighbour = np.array([100.0, 10.0, 100.0, 120.0])  # cheek to cheek: 10 % overlap
    assert containment(big, inner) == pytest.approx(1.0)
    assert containment(big, neighbour) == pytest.approx(0.1)
    assert containment(big, np.array([500.0, 0, 10, 10])) == 0.0
    boxes = np.stack([inner, big, neighbour])
    # Highest score of each same-face group wins, whichever box is larger.
    assert keep_distinct_faces(boxes, np.array([0.8, 0.95, 0.9])) == [1, 2]
    assert keep_distinct_faces(boxes, np.array([0.99, 0.95, 0.9])) == [0, 2]
    edge = np.array([10.0 + 100 * (1 - SAME_FACE_OVERLAP) + 1, 10.0, 100.0, 120.0])
    assert keep_distinct_faces(np.stack([big, edge]), np.array([0.9, 0.8])) == [0, 1]
    assert keep_distinct_faces(np.zeros((0, 4)), np.zeros(0)) == []


def _face(box: tuple[float, float, float, float], score: float = 0.9) -> DetectedFace:
    return DetectedFace(box=box, score=score, embedding=np.zeros(128, np.float32))


def test_dominant_face_rule() -> None:
    big, small, similar = _face((0.1, 0.1, 0.4, 0.5)), _face((0.7, 0.1, 0.2, 0.25)), _face((0.6, 0.1, 0.35, 0.45))
    assert dominant_face([]) is None
    assert dominant_face([small]) is small
    assert dominant_face([big, small]) is big  # 4x the area
    assert dominant_face([similar, big]) is None  # two real people: the user chooses
    text = describe_faces([big, similar])
    assert text.startswith("0: left, middle; 40% of the width") and "1: right, top; 35% of the width" in text
