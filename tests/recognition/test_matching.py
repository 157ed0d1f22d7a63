"""pipeline.recognition.matching: cosine scores and the one-person-once assignment (pure numpy/scipy)."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.recognition.matching import Match, assign_people, cosine_matrix, person_scores

T = 0.363  # the default match threshold
U = Match(None, None)


def _greedy(scores: np.ndarray, person_ids: list[int], threshold: float) -> list[Match]:
    """The naive alternative: best remaining pair first."""
    result = [U] * scores.shape[0]
    used_faces: set[int] = set()
    used_people: set[int] = set()
    for flat in np.argsort(-scores, axis=None):
        i, j = np.unravel_index(flat, scores.shape)
        if scores[i, j] >= threshold and i not in used_faces and j not in used_people:
            result[i] = Match(person_ids[j], float(scores[i, j]))
            used_faces.add(i)
            used_people.add(j)
    return result


def _total(matches: list[Match]) -> float:
    return sum(m.score for m in matches if m.score is not None)


# cosine_matrix / person_scores -----------------------------------------------------------------


def test_cosine_matrix_normalises_and_has_face_by_reference_shape() -> None:
    faces = np.array([[3.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    refs = np.array([[2.0, 0.0], [0.0, 5.0], [-1.0, 0.0], [1.0, 1.0]])
    got = cosine_matrix(faces, refs)
    s = 1 / np.sqrt(2)
    expected = [[1, 0, -1, s], [s, s, -s, 1], [0, 0, 0, 0]]
    assert got.shape == (3, 4) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_cosine_matrix_empty_and_mismatched() -> None:
    assert cosine_matrix(np.zeros((0, 128)), np.ones((3, 128))).shape == (0, 3)
    assert cosine_matrix(np.ones((2, 128)), np.zeros((0, 128))).shape == (2, 0)
    with pytest.raises(ValueError):
        cosine_matrix(np.ones((2, 128)), np.ones((2, 64)))


def test_person_scores_take_each_persons_best_reference() -> None:
    faces = np.eye(3, 4)
    refs = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0.6, 0.8, 0, 0], [0, 0, 1, 0]], float)
    scores, people = person_scores(faces, refs, [7, 3, 3, 7])
    assert people == [3, 7]  # ascending ids
    np.testing.assert_allclose(scores, [[0.6, 1.0], [1.0, 0.0], [0.0, 1.0]], atol=1e-6)


def test_person_scores_without_references_or_faces() -> None:
    scores, people = person_scores(np.ones((2, 128)), np.zeros((0, 128)), [])
    assert scores.shape == (2, 0) and people == []
    scores, people = person_scores(np.zeros((0, 128)), np.ones((2, 128)), [1, 2])
    assert scores.shape == (0, 2) and people == [1, 2]
    with pytest.raises(ValueError):
        person_scores(np.ones((1, 128)), np.ones((2, 128)), [1])


# assign_people -----------------------------------------------------------------------------------


def test_optimal_assignment_beats_greedy() -> None:
    # Greedy gives Susan (1) to face 0 (0.90), leaving face 1 with Mike at 0.10 -> unknown:
    # total 0.90, one name. The optimum names both faces: 0.80 + 0.85 = 1.65.
    scores = np.array([[0.90, 0.80], [0.85, 0.10]])
    greedy = _greedy(scores, [1, 2], T)
    assert greedy == [Match(1, 0.9), U]
    best = assign_people(scores, [1, 2], T)
    assert best == [Match(2, 0.8), Match(1, 0.85)]
    assert _total(best) > _total(greedy)


def test_each_person_named_at_most_once_and_by_the_best_face() -> None:
    scores = np.array([[0.70], [0.95], [0.80]])
    assert assign_people(scores, [5], T) == [U, Match(5, 0.95), U]


def test_below_threshold_stays_unknown_even_when_the_person_is_free() -> None:
    scores = np.array([[0.30, 0.10], [0.20, 0.362]])
    assert assign_people(scores, [1, 2], T) == [U, U]
    assert assign_people(np.array([[0.363]]), [1], 0.363)[0].person_id == 1  # at threshold: named


def test_second_choice_only_above_threshold() -> None:
    # Face 1's best (Susan) goes to face 0; its second choice (Mike, 0.2) is below threshold.
    assert assign_people(np.array([[0.9, 0.1], [0.8, 0.2]]), [1, 2], T) == [Match(1, 0.9), U]
    # ... and with Mike at 0.5 for face 1, it is named.
    assert assign_people(np.array([[0.9, 0.1], [0.8, 0.5]]), [1, 2], T) == [Match(1, 0.9), Match(2, 0.5)]


def test_nan_scores_are_never_named() -> None:
    assert assign_people(np.array([[np.nan, 0.5]]), [1, 2], T) == [Match(2, 0.5)]


def test_fixed_outranks_the_model_and_takes_the_person() -> None:
    scores = np.array([[0.95, 0.50], [0.40, 0.90]])
    # The user says face 1 is Susan (1): face 0 cannot be Susan any more and falls back to Mike.
    got = assign_people(scores, [1, 2], T, fixed={1: 1})
    assert got == [Match(2, 0.5), Match(1, 0.4)]
    # A fixed person without references keeps the face, with no score.
    assert assign_people(scores, [1, 2], T, fixed={0: 99}) == [Match(99, None), Match(2, 0.9)]
    # The user's word is kept even when it names one person twice (two people merged).
    assert assign_people(scores, [1, 2], T, fixed={0: 1, 1: 1}) == [Match(1, 0.95), Match(1, 0.4)]


def test_forbidden_pairs_are_never_proposed() -> None:
    scores = np.array([[0.95, 0.50], [0.10, 0.20]])
    assert assign_people(scores, [1, 2], T, forbidden={(0, 1)}) == [Match(2, 0.5), U]
    assert assign_people(scores, [1, 2], T, forbidden=[(0, 1), (0, 2)]) == [U, U]
    assert assign_people(scores, [1, 2], T, forbidden=[(0, 42)]) == [Match(1, 0.95), U]  # no column: ignored
    # A fixed pair wins over a forbidden one.
    assert assign_people(scores, [1, 2], T, fixed={0: 1}, forbidden=[(0, 1)]) == [Match(1, 0.95), U]


@pytest.mark.parametrize(
    "scores, people, expected",
    [
        (np.zeros((0, 0)), [], []),
        (np.array([]), [], []),
        (np.zeros((0, 3)), [1, 2, 3], []),
        (np.zeros((2, 0)), [], [U, U]),
    ],
    ids=["0x0", "flat-empty", "no-faces", "no-people"],
)
def test_empty_inputs(scores, people, expected) -> None:
    assert assign_people(scores, people, T) == expected


def test_more_faces_than_people_and_the_reverse() -> None:
    rng = np.random.default_rng(0)
    for shape in [(6, 2), (2, 6), (5, 5)]:
        scores = rng.uniform(-0.2, 1.0, size=shape)
        people = list(range(100, 100 + shape[1]))
        got = assign_people(scores, people, T)
        named = [m.person_id for m in got if m.person_id is not None]
        assert len(named) == len(set(named))
        assert all(m.score >= T for m in got if m.score is not None)
        assert _total(got) >= _total(_greedy(scores, people, T)) - 1e-9


@pytest.mark.parametrize(
    "kwargs",
    [
        {"scores": np.zeros((2, 2)), "person_ids": [1]},
        {"scores": np.zeros((2, 2)), "person_ids": [1, 1]},
        {"scores": np.zeros((2, 2)), "person_ids": [1, 2], "fixed": {2: 1}},
        {"scores": np.zeros((2, 2)), "person_ids": [1, 2], "forbidden": [(-1, 1)]},
    ],
    ids=["shape", "duplicate-ids", "fixed-face-range", "forbidden-face-range"],
)
def test_invalid_arguments(kwargs) -> None:
    with pytest.raises(ValueError):
        assign_people(threshold=T, **kwargs)
