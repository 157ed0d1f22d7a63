"""pipeline.profiles.sentences: the exact wording of the faces profile's captions and "who" answers."""

from __future__ import annotations

import pytest

from pipeline.profiles.sentences import join_names, people_caption, who_answer

CAPTIONS = [
    ((), 0, "No people."),
    (("Susan",), 0, "Susan."),
    (("Susan", "Mike"), 0, "Susan and Mike."),
    (("Susan", "Mike", "Ann"), 0, "Susan, Mike and Ann."),
    (("Susan", "Mike", "Ann", "Bo"), 0, "Susan, Mike, Ann and Bo."),
    (("Susan",), 1, "Susan with 1 other person."),
    (("Susan",), 2, "Susan with 2 other people."),
    (("Susan", "Mike"), 1, "Susan and Mike with 1 other person."),
    (("Susan", "Mike"), 2, "Susan and Mike with 2 other people."),
    ((), 1, "1 unknown person."),
    ((), 3, "3 unknown people."),
    ((" Susan ", "Mike"), 0, "Susan and Mike."),
]

ANSWERS = [
    ((), 0, "No one."),
    (("Susan",), 0, "Susan."),
    (("Susan", "Mike"), 0, "Susan and Mike."),
    (("Mike", "Susan"), 0, "Mike and Susan."),  # order is kept (left to right)
    (("Susan", "Mike", "Ann"), 0, "Susan, Mike and Ann."),
    (("Susan",), 1, "Susan and 1 unknown person."),
    (("Susan", "Mike"), 2, "Susan, Mike and 2 unknown people."),
    ((), 1, "Nobody I know: 1 unknown person."),
    ((), 2, "Nobody I know: 2 unknown people."),
]


@pytest.mark.parametrize("names, n_unknown, expected", CAPTIONS)
def test_people_caption(names, n_unknown, expected) -> None:
    assert people_caption(names, n_unknown) == expected
    assert people_caption(list(names), n_unknown) == expected  # any sequence


@pytest.mark.parametrize("names, n_unknown, expected", ANSWERS)
def test_who_answer(names, n_unknown, expected) -> None:
    assert who_answer(names, n_unknown) == expected


@pytest.mark.parametrize("function", [people_caption, who_answer])
def test_negative_unknown_count_is_an_error(function) -> None:
    with pytest.raises(ValueError):
        function(["Susan"], -1)


def test_join_names() -> None:
    assert [join_names(n) for n in ([], ["A"], ["A", "B"], ["A", "B", "C"])] == ["", "A", "A and B", "A, B and C"]
