"""Full-text search over captions: FTS5 on SQLite, tsvector + GIN on PostgreSQL.

One typed entry point, :func:`search_captions` (query, order, limit, offset or cursor -> hits),
used by ``pipeline search`` and the web app. Speed comes from never ranking every match: each
order is an integer key kept by triggers, and a page walks that key's index and stops.

- ``newest`` (the default): photo time, newest first: ``captions.sort_key`` (migration 0003).
- ``relevance``: BM25 with each query word counted once per caption. A query's IDFs are the same
  for all its matches, so that is "fewest words first", ties newest first (to the minute, then
  by caption id): ``captions.relevance_key`` (migration 0013). Every match is ranked. Captions
  name each person once, so this is BM25's own order for them; a caption that repeats a query
  word (or, for ``Gra*``, holds two words with the prefix) ranks by its length like any other,
  where ``bm25()`` would lift it.

SQLite: one FTS5 table per order whose rowid is that key (``captions_fts``, ``captions_rel_fts``),
so ``ORDER BY rowid LIMIT n`` stops after ``n`` matches. PostgreSQL: a unique B-tree per key next
to the GIN index on ``text_tsv``, and each lexeme's captions by relevance (``caption_lexemes``);
:mod:`pipeline.store.search_plans` picks which to read from PostgreSQL's estimates.

Pages: ``offset`` skips hits (a deep page costs what it skips); a cursor (each hit's ``cursor``)
continues after that hit (``after``) or ends just before it (``before``) at the cost of one page,
and new captions arriving meanwhile neither repeat nor drop a hit.

Query words: every word must match (stemmed: "playing" finds "play"); a word ending in ``*`` is a
prefix (``Gra*`` finds Grace and Grandma). Anything else is ignored, so no input is a syntax error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import DateTime, Float, Integer, Text, text
from sqlalchemy.engine import Engine
from sqlalchemy.types import BigInteger, TypeEngine

from pipeline.errors import PipelineError
from pipeline.store.search_plans import Choice, Plan, choose, lexemes_of

Order = Literal["newest", "relevance"]
ORDERS: tuple[Order, ...] = ("newest", "relevance")
MAX_LIMIT = 1_000
KEY_MAX = 2**63 - 1
WORD_SHIFT = 56  # relevance_key >> 56 is the caption's word count (migration 0013)
# captions.sort_key (migration 0003): (SECONDS_MAX - the photo's second since 1800) << ID_BITS | caption id
EPOCH_OFFSET = 5_364_662_400  # seconds from 1800-01-01 to 1970-01-01
SECONDS_MAX = 2**34 - 1  # the largest photo time sort_key holds, seconds since 1800
ID_BITS = 28  # sort_key's low bits: the caption id

_TERM = re.compile(r"(\w+)(\*?)", re.UNICODE)
_CURSOR = re.compile(r"([nr])([0-9]{1,19})")


class SearchError(PipelineError):
    """The search request itself is unusable (no word, unknown order, bad page size or cursor)."""


@dataclass(frozen=True)
class Term:
    """One query word; ``prefix`` when the user wrote ``word*``."""

    word: str
    prefix: bool


@dataclass(frozen=True)
class Hit:
    """One matching caption.

    ``path``: the photo's full path as stored; ``taken_at``: capture time (None when unknown);
    ``mtime``: file modification time (seconds since the epoch), the fallback ordering time;
    ``rank``: relevance, larger is better (``1 / words`` ordered by relevance, 0.0 newest first);
    ``cursor``: this hit's place in its order (``n...`` newest, ``r...`` relevance), to pass as
    ``after`` (the next page) or ``before`` (the page before it).
    """

    photo_id: int
    path: str
    caption: str
    taken_at: datetime | None
    mtime: float
    rank: float
    cursor: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields (times as ISO 8601 text)."""
        return {
            "photo_id": self.photo_id,
            "path": self.path,
            "caption": self.caption,
            "taken_at": self.taken_at.isoformat() if self.taken_at else None,
            "mtime": self.mtime,
            "rank": self.rank,
            "cursor": self.cursor,
        }


def parse_terms(user_text: str) -> list[Term]:
    """User text -> words; ``'Susan gra*'`` -> [Term('Susan', False), Term('gra', True)]."""
    return [Term(word, bool(star)) for word, star in _TERM.findall(user_text)]


def fts5_query(terms: list[Term]) -> str:
    """Terms -> an FTS5 query that ANDs each word, immune to FTS5 syntax (``"Susan" "gra"*``)."""
    return " ".join(f'"{t.word}"*' if t.prefix else f'"{t.word}"' for t in terms)


def tsquery_text(terms: list[Term]) -> str:
    """Terms -> ``to_tsquery`` input (``Susan & gra:*``); words are ``\\w+`` only, so it always parses."""
    return " & ".join(f"{t.word}:*" if t.prefix else t.word for t in terms)


def cursor_key(cursor: str, order: Order) -> int:
    """A hit's ``cursor`` -> its key in ``order``; :class:`SearchError` for one of another order or
    not made by this module (``'n123'`` -> 123 for newest)."""
    found = _CURSOR.fullmatch(cursor.strip())
    if found is None or int(found[2]) > KEY_MAX:
        raise SearchError(f"{cursor!r} is not a search cursor (one looks like n123 or r456)")
    if found[1] != order[0]:
        raise SearchError(f"cursor {cursor!r} belongs to the other order, not {order}")
    return int(found[2])


_HIT_COLUMNS: dict[str, TypeEngine[Any]] = {
    "photo_id": Integer(),
    "path": Text(),
    "caption": Text(),
    "taken_at": DateTime(timezone=True),
    "mtime": Float(),
    "rank": Float(),
    "key": BigInteger(),
}
_SELECT = "p.id AS photo_id, p.path AS path, c.text AS caption, p.taken_at AS taken_at, p.mtime AS mtime"

# per order: (SQLite FTS5 table whose rowid is the key, the captions column holding the key, rank SQL)
_KEYS: dict[str, tuple[str, str, str]] = {
    "newest": ("captions_fts", "sort_key", "0.0"),
    "relevance": ("captions_rel_fts", "relevance_key", f"1.0 / max(1, {{key}} >> {WORD_SHIFT})"),
}
_SQLITE = (
    "SELECT {select}, {rank} AS rank, f.rowid AS key FROM {fts} f JOIN captions c ON c.{column} = f.rowid "
    "JOIN photos p ON p.id = c.photo_id WHERE {fts} MATCH :q AND f.rowid > :after AND f.rowid < :before "
    "AND p.state <> 'missing' ORDER BY f.rowid {direction} LIMIT :n OFFSET :o"
)
_PG = (
    "SELECT {select}, {rank} AS rank, c.{column} AS key FROM captions c JOIN photos p ON p.id = c.photo_id "
    "WHERE c.text_tsv @@ to_tsquery('english', :q) AND c.{column} > :after AND c.{column} < :before "
    "AND p.state <> 'missing' ORDER BY c.{column}{hide} {direction} LIMIT :n OFFSET :o"
)
_PG_LEXEME = (  # relevance by one lexeme's list (caption_lexemes, migration 0013)
    "SELECT {select}, {rank} AS rank, l.relevance_key AS key FROM caption_lexemes l "
    "JOIN captions c ON c.relevance_key = l.relevance_key JOIN photos p ON p.id = c.photo_id "
    "WHERE l.lexeme = :lexeme AND l.relevance_key > :after AND l.relevance_key < :before "
    "AND c.text_tsv @@ to_tsquery('english', :q) AND p.state <> 'missing' "
    "ORDER BY l.relevance_key {direction} LIMIT :n OFFSET :o"
)


def _sql(sqlite: bool, order: Order, backwards: bool, plan: Plan) -> str:
    """The page query for one dialect, order and PostgreSQL plan (:mod:`pipeline.store.search_plans`);
    ``backwards`` walks toward smaller keys (a ``before`` page). For ``sort``, ``+ 0`` hides the
    key's B-tree from the ORDER BY so that the GIN matches are read and sorted."""
    fts, column, rank = _KEYS[order]
    direction = "DESC" if backwards else ""
    if sqlite:
        return _SQLITE.format(
            select=_SELECT, rank=rank.format(key="f.rowid"), fts=fts, column=column, direction=direction
        )
    rank = rank.replace("max(", "greatest(").format(key=f"c.{column}")
    if plan == "lexeme":
        return _PG_LEXEME.format(select=_SELECT, rank=rank, direction=direction)
    hide = "" if plan == "walk" else " + 0"
    return _PG.format(select=_SELECT, rank=rank, column=column, hide=hide, direction=direction)


def search_captions(
    engine: Engine,
    user_text: str,
    limit: int = 20,
    *,
    order: Order = "newest",
    offset: int = 0,
    after: str | None = None,
    before: str | None = None,
) -> list[Hit]:
    """Photos whose caption contains every word of ``user_text``: one page of at most ``limit`` hits.

    ``order``: ``newest`` (photo time, newest first) or ``relevance`` (see the module docstring);
    ``offset``: how many hits to skip (page ``k`` of size ``n`` starts at ``(k - 1) * n``), counted
    from the cursor when one is given; ``after``: a hit's ``cursor``: the page starts just after
    that hit; ``before``: the page ends just before that hit (the previous page), still in order.
    Read-only; raises :class:`SearchError` for a request that cannot be answered.
    """
    terms = parse_terms(user_text)
    if not terms:
        raise SearchError("give at least one word to search for")
    if order not in ORDERS:
        raise SearchError(f"order must be one of {', '.join(ORDERS)}, not {order!r}")
    if not 1 <= limit <= MAX_LIMIT:
        raise SearchError(f"limit must be between 1 and {MAX_LIMIT}, not {limit}")
    if offset < 0:
        raise SearchError(f"offset must be 0 or more, not {offset}")
    if after is not None and before is not None:
        raise SearchError("give a cursor to continue after or one to stop before, not both")
    sqlite = engine.dialect.name == "sqlite"
    low = -1 if after is None else cursor_key(after, order)
    high = KEY_MAX if before is None else cursor_key(before, order)
    query = fts5_query(terms) if sqlite else tsquery_text(terms)
    backwards = before is not None
    with engine.connect() as conn:
        choice = Choice("walk")
        if not sqlite:
            # one page: starting parallel workers costs more (25 ms on a busy 2-core machine) than it saves
            conn.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))
            whole = [t.word for t in terms if not t.prefix] if order == "relevance" else []
            lexemes = lexemes_of(conn, whole)
            choice = choose(conn, query, lexemes, offset + limit)
            if choice.plan != "sort":
                conn.execute(text("SET LOCAL enable_bitmapscan = off"))  # this transaction only
            if choice.plan == "lexeme":  # each listed caption by its key, in list order (a merge join
                # walks every caption's key from the start: 1.1 s for "beach" at a million)
                conn.execute(text("SET LOCAL enable_mergejoin = off"))
                conn.execute(text("SET LOCAL enable_hashjoin = off"))
            if lexemes:  # a caption holding n distinct lexemes has at least n words
                low = max(low, (len(lexemes) << WORD_SHIFT) - 1)
        sql = _sql(sqlite, order, backwards, choice.plan)
        params = {"q": query, "n": limit, "o": offset, "after": low, "before": high, "lexeme": choice.lexeme}
        rows = list(conn.execute(text(sql).columns(**_HIT_COLUMNS), params).all())
    if backwards:
        rows.reverse()
    prefix = order[0]
    return [Hit(int(r[0]), str(r[1]), str(r[2]), r[3], float(r[4]), float(r[5]), f"{prefix}{int(r[6])}") for r in rows]
