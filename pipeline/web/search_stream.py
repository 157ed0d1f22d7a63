"""The Search page's one result stream: a person's photos (by name) and the caption matches,
merged newest first, each photo once, paged by one opaque cursor.

Both sides are ordered by the same key, a :class:`Position`: the photo's time in whole seconds
(``taken_at``, else the file's ``mtime``: the definition of ``captions.sort_key``, migration
0003, and of ``faces.photo_time``, migration 0008) and then the photo id, newest (largest)
first. Captions come in ``sort_key`` order (whole seconds, then *caption* id) and faces in
``photo_time`` order (fractional seconds, then photo id), so within one second neither side is
in key order; each side is therefore read until every second it returns is whole (read past
it), and sorted by the key in Python. A page reads ``page size + 1`` photos of each side past
the cursor (a few more when they end inside a busy second), so it costs the same however deep.

Merging two sorted prefixes that each hold at least the ``n`` first keys of their side gives
the stream's ``n`` first keys; a photo found both ways has one key, so it is shown once, and a
cursor (the last or first key shown) continues strictly past it: no photo repeats or is skipped
while new photos arrive, and walking "older" then "newer" gives the same pages back.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace

from sqlalchemy.engine import Connection, Engine

from pipeline.errors import PipelineError
from pipeline.store.search import EPOCH_OFFSET, ID_BITS, MAX_LIMIT, SECONDS_MAX
from pipeline.web.queries import PhotoCard

_POSITION = re.compile(r"p([0-9]{1,11})\.([0-9]{1,19})")


class SearchPositionError(PipelineError):
    """A Search page cursor that this page did not make (edited or truncated link): HTTP 400."""

    http_status = 400


@dataclass(frozen=True, order=True)
class Position:
    """A photo's place in the stream: ``second`` (its time in whole seconds since 1800-01-01,
    clamped to 0..2**34-1 as ``sort_key`` is) and ``photo_id``; larger is newer."""

    second: int
    photo_id: int

    def token(self) -> str:
        """The cursor text for links (``p<second>.<photo id>``); :func:`parse_position` reads it."""
        return f"p{self.second}.{self.photo_id}"


def parse_position(text: str) -> Position:
    """A link's cursor -> its :class:`Position`; :class:`SearchPositionError` for anything else."""
    found = _POSITION.fullmatch(text.strip())
    if found is None or int(found[1]) > SECONDS_MAX or int(found[2]) >= 2**63:
        raise SearchPositionError(f"{text!r} is not a search cursor; use the page's newer/older links")
    return Position(int(found[1]), int(found[2]))


def second_of_time(seconds: float, dialect: str) -> int:
    """Epoch seconds (``faces.photo_time``) -> the second ``sort_key`` packs for the same photo:
    floored on PostgreSQL, truncated on SQLite (``CAST(... AS INTEGER)``), since 1800, clamped."""
    whole = math.floor(seconds) if dialect != "sqlite" else math.trunc(seconds)
    return max(0, min(SECONDS_MAX, whole + EPOCH_OFFSET))


def second_of_key(sort_key: int) -> int:
    """``captions.sort_key`` -> its photo's second since 1800 (the key stores newer as smaller)."""
    return SECONDS_MAX - (sort_key >> ID_BITS)


Found = tuple[Position, PhotoCard]


@dataclass
class StreamPage:
    """One page: ``cards`` newest first; ``older``/``newer``: the cursor for the next page that
    way (None: nothing more that way); ``message``: why a side could not be searched, if so."""

    cards: list[PhotoCard]
    older: Position | None
    newer: Position | None
    message: str | None = None


def _collect(batches: Iterator[list[Found]], cursor: Position | None, older: bool, want: int) -> list[Found]:
    """The first ``want`` photos (or all) past ``cursor`` of one side, in walk order.

    ``batches``: the side's rows in walk order (by time; within a second in any order), ending
    when the side does. Reads batches until ``want`` photos lie in seconds wholly read (before
    the last row's second), so the result is exactly a prefix of the side in key order.
    """
    kept: dict[Position, PhotoCard] = {}
    for batch in batches:
        for position, card in batch:
            if cursor is None or (position < cursor if older else position > cursor):
                kept.setdefault(position, card)
        if not batch:
            break
        edge = batch[-1][0].second
        whole = [p for p in kept if (p.second > edge if older else p.second < edge)]
        if len(whole) >= want:
            return [(p, kept[p]) for p in sorted(whole, reverse=older)]
    return [(p, kept[p]) for p in sorted(kept, reverse=older)]


def _name_batches(
    conn: Connection, person_id: int, cursor: Position | None, older: bool, size: int
) -> Iterator[list[Found]]:
    """The person's faces (photos of missing files left out) past about ``cursor``'s second, by
    ``photo_time`` then photo id in walk order, ``size`` rows a query: a walk of the index
    ``faces (person_id, photo_time, photo_id)``. Bounds are a second loose; :func:`_collect`
    keeps exactly what lies past the cursor."""
    from sqlalchemy import select, tuple_
    from sqlmodel import col

    from pipeline.store.models import Face, Photo
    from pipeline.web.queries import epoch_time, file_name

    time, photo = col(Face.photo_time), col(Face.photo_id)
    where = [col(Face.person_id) == person_id, time.is_not(None)]
    if cursor is not None and older and cursor.second < SECONDS_MAX:
        where.append(time < cursor.second - EPOCH_OFFSET + 2)
    elif cursor is not None and not older and cursor.second > 0:
        where.append(time >= cursor.second - EPOCH_OFFSET - 1)
    order = (time.desc(), photo.desc()) if older else (time.asc(), photo.asc())
    columns = (photo, col(Photo.path), time, col(Face.id), col(Face.x), col(Face.y), col(Face.w), col(Face.h))
    base = select(*columns).join(Photo, col(Photo.id) == photo).where(*where).order_by(*order).limit(size)
    dialect = conn.dialect.name
    query = base
    while True:
        rows = conn.execute(query).all()
        yield [
            (
                Position(second_of_time(r[2] or 0.0, dialect), r[0]),  # never None: filtered
                PhotoCard(r[0], file_name(r[1]), epoch_time(r[2]), face_id=r[3], box=(r[4], r[5], r[6], r[7])),
            )
            for r in rows
        ]
        if len(rows) < size:
            return
        last = (rows[-1][2], rows[-1][0])
        query = base.where(tuple_(time, photo) < last if older else tuple_(time, photo) > last)


def _caption_batches(engine: Engine, q: str, cursor: Position | None, older: bool, size: int) -> Iterator[list[Found]]:
    """Caption matches of ``q`` from ``cursor``'s second on, in walk order, ``size`` a query
    (:func:`pipeline.store.search.search_captions` by ``sort_key``, newest first)."""
    from pipeline.store.search import search_captions
    from pipeline.web.queries import epoch_time, file_name

    start: str | None = None
    if cursor is not None:
        first_key = (SECONDS_MAX - cursor.second) << ID_BITS  # the smallest key of that second
        if older:
            start = f"n{first_key - 1}" if first_key > 0 else None
        else:
            start = f"n{first_key + (1 << ID_BITS)}"
    while True:
        if older:
            hits = search_captions(engine, q, size, after=start)
        else:
            hits = list(reversed(search_captions(engine, q, size, before=start)))
        yield [
            (
                Position(second_of_key(int(h.cursor[1:])), h.photo_id),
                PhotoCard(h.photo_id, file_name(h.path), h.taken_at or epoch_time(h.mtime), caption=h.caption),
            )
            for h in hits
        ]
        if len(hits) < size:
            return
        start = hits[-1].cursor


def _merge(sides: list[list[Found]], older: bool, want: int) -> list[Found]:
    """The first ``want`` photos of the sides together in walk order, each once (a photo found by
    name keeps its face box and gains its caption)."""
    cards: dict[Position, PhotoCard] = {}
    for side in sides:
        for position, card in side:
            known = cards.get(position)
            if known is None:
                cards[position] = card
            elif known.caption is None and card.caption is not None:
                cards[position] = replace(known, caption=card.caption)
    return [(p, cards[p]) for p in sorted(cards, reverse=older)[:want]]


def search_stream(
    engine: Engine,
    q: str,
    size: int,
    *,
    after: Position | None = None,
    before: Position | None = None,
) -> StreamPage:
    """One page of at most ``size`` photos matching ``q`` by a person's name or caption words,
    newest first: the first page, the page older than ``after``, or the page newer than
    ``before`` (give at most one). Read-only; a caption query with no usable word only sets
    ``message`` (the name side still answers). A page with nothing newer than ``before`` comes
    back empty with no cursors (the caller shows the first page)."""
    from pipeline.store.search import SearchError
    from pipeline.web.queries import person_named

    if after is not None and before is not None:
        raise SearchPositionError("give a cursor to go older (after) or newer (before), not both")
    older = before is None
    cursor = after if older else before
    want = size + 1
    batch = min(MAX_LIMIT, 2 * want + 8)
    sides: list[list[Found]] = []
    message = None
    with engine.connect() as conn:
        person = person_named(conn, q)
        if person is not None:
            sides.append(_collect(_name_batches(conn, person, cursor, older, batch), cursor, older, want))
    try:
        sides.append(_collect(_caption_batches(engine, q, cursor, older, batch), cursor, older, want))
    except SearchError as exc:
        message = str(exc)
    found = _merge(sides, older, want)
    more = len(found) > size
    shown = found[:size] if older else found[:size][::-1]
    cards = [card for _, card in shown]
    if not shown:
        return StreamPage([], None, after if older else None, message)
    if older:
        return StreamPage(cards, shown[-1][0] if more else None, shown[0][0] if after else None, message)
    return StreamPage(cards, shown[-1][0], shown[0][0] if more else None, message)


def page_start(engine: Engine, q: str, size: int, page_no: int) -> tuple[bool, Position | None]:
    """Where page ``page_no`` (1-based, ``size`` a page) of ``q`` starts: (False, None) when the
    stream ends before it, else (True, the cursor to continue after; None for the first page).
    Walks the pages before it, one page of work each: for ``?page=K`` links without a cursor."""
    cursor: Position | None = None
    for _ in range(page_no - 1):
        stream = search_stream(engine, q, size, after=cursor)
        if stream.older is None:
            return False, None
        cursor = stream.older
    return True, cursor
