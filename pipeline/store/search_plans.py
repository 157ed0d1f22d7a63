"""How PostgreSQL reads one page of caption matches: plans picked from PostgreSQL's own estimates.

Three ways to produce the matches in key order (``sort_key`` newest first, ``relevance_key``
most relevant first) and stop after the page:

- ``walk``: the key's B-tree, filtering each caption with the GIN-indexed ``text_tsv``; cheap when
  matches are common and spread over the key (a common name, newest first).
- ``sort``: the GIN matches, then a sort; cheap when they are few (a rare name).
- ``lexeme`` (relevance only): ``caption_lexemes`` (migration 0013) lists each lexeme's captions
  by ``relevance_key``; walk the rarest query word's list and filter with ``text_tsv``. Relevance
  puts short captions first, and a word that never occurs in them ("beach" in one-name
  captions) makes the key walk read most of the table; its own list starts at its matches.

The planner alone misjudges these (at a million captions it walked the whole index for a name
in 25 captions, seconds), so :func:`choose` asks for its row estimates (``EXPLAIN``, under a
millisecond each) and compares the rows each plan would read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import text
from sqlalchemy.engine import Connection

Plan = Literal["walk", "sort", "lexeme"]


@dataclass(frozen=True)
class Choice:
    """The plan; for ``lexeme`` the lexeme whose list is walked (else ``""``)."""

    plan: Plan
    lexeme: str = ""


def _estimate(conn: Connection, sql: str, value: str) -> float:
    """PostgreSQL's estimate of the rows ``sql`` (one ``:v`` parameter) returns, at least 1."""
    explained = conn.execute(text(f"EXPLAIN (FORMAT JSON) {sql}"), {"v": value}).scalar_one()
    plan = (json.loads(explained) if isinstance(explained, str) else explained)[0]["Plan"]
    return max(1.0, float(plan["Plan Rows"]))


def estimated_matches(conn: Connection, tsquery: str) -> float:
    """PostgreSQL's estimate of the captions matching ``to_tsquery('english', tsquery)`` (at least 1)."""
    return _estimate(conn, "SELECT 1 FROM captions WHERE text_tsv @@ to_tsquery('english', :v)", tsquery)


def lexemes_of(conn: Connection, words: list[str]) -> list[str]:
    """The distinct lexemes whole query words index as (``['Playing', 'the']`` -> ``['play']``):
    stop words have none; a word the parser splits gives its parts, each of which must match."""
    if not words:
        return []
    found = conn.execute(
        text("SELECT DISTINCT lexeme FROM unnest(to_tsvector('english', :w)) ORDER BY lexeme"), {"w": " ".join(words)}
    )
    return [str(lexeme) for lexeme in found.scalars()]


def choose(conn: Connection, tsquery: str, lexemes: list[str], wanted: int) -> Choice:
    """The cheapest plan for ``wanted`` matches (offset + page) of ``tsquery``; ``lexemes``: the
    lexemes of the query's whole words, whose lists a relevance search walks (empty newest first).

    Rows read: ``walk`` about ``total / matches * wanted``; ``sort`` ``matches``; ``lexeme`` about
    ``list / matches * wanted`` for the shortest list (at most its length). A relevance search
    walks the key only when it has no whole word: that estimate assumes matches spread evenly
    over the key, which relevance's short-captions-first order breaks.
    """
    matches = estimated_matches(conn, tsquery)
    costs: dict[Choice, float] = {Choice("sort"): matches}
    for lexeme in lexemes:
        listed = _estimate(conn, "SELECT 1 FROM caption_lexemes WHERE lexeme = :v", lexeme)
        costs[Choice("lexeme", lexeme)] = min(listed, listed / matches * wanted)
    if not lexemes:
        total = conn.execute(text("SELECT reltuples FROM pg_class WHERE relname = 'captions'")).scalar_one()
        costs[Choice("walk")] = max(1.0, float(total)) / matches * wanted
    return min(costs, key=lambda choice: costs[choice])
