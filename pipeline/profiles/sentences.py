"""Deterministic English sentences for the ``faces`` profile (no language model).

``names`` are the named people in left-to-right order (as :meth:`FaceModel.detect` sorts faces);
``n_unknown`` the number of faces nobody was matched to. The wording, exactly:

:func:`people_caption` (the photo's caption)

===================  ==========  ============================================
names                n_unknown   caption
===================  ==========  ============================================
()                   0           ``No people.``
(Susan,)             0           ``Susan.``
(Susan, Mike)        0           ``Susan and Mike.``
(Susan, Mike, Ann)   0           ``Susan, Mike and Ann.``
(Susan,)             1           ``Susan with 1 other person.``
(Susan, Mike)        2           ``Susan and Mike with 2 other people.``
()                   1           ``1 unknown person.``
()                   3           ``3 unknown people.``
===================  ==========  ============================================

:func:`who_answer` (the answer to "Who is in this photo?")

===================  ==========  ============================================
names                n_unknown   answer
===================  ==========  ============================================
()                   0           ``No one.``
(Susan, Mike)        0           ``Susan and Mike.``
(Susan,)             1           ``Susan and 1 unknown person.``
(Susan, Mike)        2           ``Susan, Mike and 2 unknown people.``
()                   1           ``Nobody I know: 1 unknown person.``
()                   2           ``Nobody I know: 2 unknown people.``
===================  ==========  ============================================

Names are used as given (surrounding whitespace stripped); no serial comma.
"""

from __future__ import annotations

from collections.abc import Sequence


def join_names(items: Sequence[str]) -> str:
    """Join as "A", "A and B" or "A, B and C" (empty string for no items)."""
    items = [str(item).strip() for item in items]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _count(n: int, singular: str, plural: str) -> str:
    return f"{n} {singular if n == 1 else plural}"


def _check(n_unknown: int) -> int:
    if n_unknown < 0:
        raise ValueError(f"n_unknown must be >= 0, got {n_unknown}")
    return int(n_unknown)


def people_caption(names: Sequence[str], n_unknown: int) -> str:
    """The caption of a photo from its named people (left to right) and unknown-face count.

    See the module docstring for the exact wording. Raises ``ValueError`` if ``n_unknown < 0``.
    """
    n_unknown = _check(n_unknown)
    if not names:
        return "No people." if n_unknown == 0 else _count(n_unknown, "unknown person", "unknown people") + "."
    if n_unknown == 0:
        return join_names(names) + "."
    return f"{join_names(names)} with {_count(n_unknown, 'other person', 'other people')}."


def who_answer(names: Sequence[str], n_unknown: int) -> str:
    """The answer to "Who is in this photo?" (see the module docstring for the wording).

    Raises ``ValueError`` if ``n_unknown < 0``.
    """
    n_unknown = _check(n_unknown)
    unknown = _count(n_unknown, "unknown person", "unknown people")
    if not names:
        return "No one." if n_unknown == 0 else f"Nobody I know: {unknown}."
    if n_unknown == 0:
        return join_names(names) + "."
    return join_names([*names, unknown]) + "."
