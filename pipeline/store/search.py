"""Full-text search over captions: FTS5 on SQLite, tsvector + GIN on PostgreSQL.

One typed entry point, :func:`search_captions` (query, order, limit, offset -> hits), used by
``pipeline search`` and the web app. Speed comes from never ranking every match:

- ``newest`` (the default): both databases walk ``captions.sort_key`` (photo time, newest first;
  migration 0003) and stop after ``offset + limit`` matches. SQLite's FTS5 index is keyed by it;
  PostgreSQL walks its B-tree for common words or sorts the few GIN matches of rare ones.
- ``relevance``: the newest :data:`RELEVANCE_CANDIDATES` matches (at least ``offset + limit``) are
  ranked by BM25 (SQLite) or ``ts_rank`` (PostgreSQL), best first, ties newest first. A word that
  matches more captions than that ranks the most recent ones: add a word to narrow it.

Query words: every word must match (stemmed: "playing" finds "play"); a word ending in ``*`` is a
prefix (``Gra*`` finds Grace and Grandma). Anything else is ignored, so no input is a syntax error.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import DateTime, Float, Integer, Text, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.types import TypeEngine

from pipeline.errors import PipelineError

Order = Literal["newest", "relevance"]
ORDERS: tuple[Order, ...] = ("newest", "relevance")
RELEVANCE_CANDIDATES = 300
MAX_LIMIT = 1_000

_TERM = re.compile(r"(\w+)(\*?)", re.UNICODE)


class SearchError(PipelineError):
    """The search request itself is unusable (no word, unknown order, bad page size)."""


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
    ``rank``: relevance, larger is better (0.0 when ordered newest first).
    """

    photo_id: int
    path: str
    caption: str
    taken_at: datetime | None
    mtime: float
    rank: float

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields (times as ISO 8601 text)."""
        return {
            "photo_id": self.photo_id,
            "path": self.path,
            "caption": self.caption,
            "taken_at": self.taken_at.isoformat() if self.taken_at else None,
            "mtime": self.mtime,
            "rank": self.rank,
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


_HIT_COLUMNS: dict[str, TypeEngine[Any]] = {
    "photo_id": Integer(),
    "path": Text(),
    "caption": Text(),
    "taken_at": DateTime(timezone=True),
    "mtime": Float(),
    "rank": Float(),
}
_SELECT = "p.id AS photo_id, p.path AS path, c.text AS caption, p.taken_at AS taken_at, p.mtime AS mtime"

_SQLITE_NEWEST = (
    f"SELECT {_SELECT}, 0.0 AS rank FROM captions_fts f JOIN captions c ON c.sort_key = f.rowid "
    "JOIN photos p ON p.id = c.photo_id WHERE captions_fts MATCH :q AND p.state <> 'missing' "
    "ORDER BY f.rowid LIMIT :n OFFSET :o"
)
_SQLITE_RELEVANCE = (
    f"SELECT {_SELECT}, -m.bm25 AS rank FROM (SELECT rowid AS k, bm25(captions_fts) AS bm25 FROM captions_fts "
    "WHERE captions_fts MATCH :q ORDER BY rowid LIMIT :cand) m JOIN captions c ON c.sort_key = m.k "
    "JOIN photos p ON p.id = c.photo_id WHERE p.state <> 'missing' ORDER BY m.bm25, m.k LIMIT :n OFFSET :o"
)
_PG_NEWEST = (
    f"SELECT {_SELECT}, 0.0 AS rank FROM captions c JOIN photos p ON p.id = c.photo_id "
    "WHERE c.text_tsv @@ to_tsquery('english', :q) AND p.state <> 'missing' "
    "ORDER BY c.sort_key LIMIT :n OFFSET :o"
)
_PG_RELEVANCE = (
    f"SELECT {_SELECT}, m.rank AS rank FROM (SELECT c.id, c.sort_key, ts_rank(c.text_tsv, q.q) AS rank "
    "FROM captions c, to_tsquery('english', :q) AS q(q) WHERE c.text_tsv @@ q.q "
    "ORDER BY c.sort_key LIMIT :cand) m JOIN captions c ON c.id = m.id JOIN photos p ON p.id = c.photo_id "
    "WHERE p.state <> 'missing' ORDER BY m.rank DESC, m.sort_key LIMIT :n OFFSET :o"
)


def _walk_newest_first(conn: Connection, query: str, wanted: int) -> bool:
    """Whether walking ``sort_key`` newest first beats reading every match, by PostgreSQL's own
    estimate of the matches (the planner alone misjudges rare words: at a million captions it
    walked the whole index for a name in 25 captions, seconds).

    The walk reads about ``total / matches * wanted`` captions; the other plan reads ``matches``.
    """
    explained = conn.execute(
        text("EXPLAIN (FORMAT JSON) SELECT 1 FROM captions WHERE text_tsv @@ to_tsquery('english', :q)"), {"q": query}
    ).scalar_one()
    plan = (json.loads(explained) if isinstance(explained, str) else explained)[0]["Plan"]
    matches = max(1.0, float(plan["Plan Rows"]))
    total = max(
        1.0, float(conn.execute(text("SELECT reltuples FROM pg_class WHERE relname = 'captions'")).scalar_one())
    )
    return total / matches * wanted < matches


def search_captions(
    engine: Engine, user_text: str, limit: int = 20, *, order: Order = "newest", offset: int = 0
) -> list[Hit]:
    """Photos whose caption contains every word of ``user_text``: one page of at most ``limit`` hits.

    ``order``: ``newest`` (photo time, newest first) or ``relevance`` (see the module docstring);
    ``offset``: how many hits to skip (page ``k`` of size ``n`` starts at ``(k - 1) * n``).
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
    sqlite = engine.dialect.name == "sqlite"
    if order == "newest":
        sql = _SQLITE_NEWEST if sqlite else _PG_NEWEST
    else:
        sql = _SQLITE_RELEVANCE if sqlite else _PG_RELEVANCE
    params = {
        "q": fts5_query(terms) if sqlite else tsquery_text(terms),
        "n": limit,
        "o": offset,
        "cand": max(RELEVANCE_CANDIDATES, offset + limit),
    }
    with engine.connect() as conn:
        if not sqlite:
            # one page: starting parallel workers costs more (25 ms on a busy 2-core machine) than it saves
            conn.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))
            wanted = offset + limit if order == "newest" else max(RELEVANCE_CANDIDATES, offset + limit)
            if _walk_newest_first(conn, str(params["q"]), wanted):
                conn.execute(text("SET LOCAL enable_bitmapscan = off"))  # this transaction only
            else:  # "+ 0" hides the sort_key index from the ORDER BY: GIN matches, then a sort
                sql = sql.replace("ORDER BY c.sort_key LIMIT", "ORDER BY c.sort_key + 0 LIMIT")
        rows = conn.execute(text(sql).columns(**_HIT_COLUMNS), params).all()
    return [Hit(int(r[0]), str(r[1]), str(r[2]), r[3], float(r[4]), float(r[5])) for r in rows]
