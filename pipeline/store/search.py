"""Full-text search over captions: FTS5 on SQLite, tsvector on PostgreSQL."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import Engine

_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass
class Hit:
    photo_id: int
    path: str
    caption: str
    rank: float


def fts5_query(user_text: str) -> str:
    """User words -> an FTS5 query that ANDs each word, immune to FTS5 syntax ("Susan Mike" -> '"Susan" "Mike"')."""
    words = _WORD.findall(user_text)
    return " ".join(f'"{w}"' for w in words)


def search_captions(engine: Engine, user_text: str, limit: int = 20) -> list[Hit]:
    """Photos whose caption contains every word of ``user_text``, best first (stemmed: 'play' finds 'playing')."""
    if not _WORD.search(user_text):
        raise ValueError("give at least one word to search for")
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            rows = conn.execute(
                text(
                    "SELECT p.id, p.path, c.text, bm25(captions_fts) AS rank FROM captions_fts "
                    "JOIN captions c ON c.id = captions_fts.rowid JOIN photos p ON p.id = c.photo_id "
                    "WHERE captions_fts MATCH :q AND p.state <> 'missing' ORDER BY rank LIMIT :n"
                ),
                {"q": fts5_query(user_text), "n": limit},
            ).all()
        else:
            rows = conn.execute(
                text(
                    "SELECT p.id, p.path, c.text, -ts_rank(c.text_tsv, plainto_tsquery('english', :q)) AS rank "
                    "FROM captions c JOIN photos p ON p.id = c.photo_id "
                    "WHERE c.text_tsv @@ plainto_tsquery('english', :q) AND p.state <> 'missing' ORDER BY rank LIMIT :n"
                ),
                {"q": user_text, "n": limit},
            ).all()
    return [Hit(int(r[0]), str(r[1]), str(r[2]), float(r[3])) for r in rows]
