"""Relevance search over every match without ranking them: ``captions.relevance_key``.

Relevance (``pipeline search --order relevance``) is BM25 with each query word counted once per
caption: the IDFs are the same for every match of a query, so the order is "fewest words first",
ties newest first. Captions name each person once, so this is BM25's own order for them; a
caption that repeats a query word ranks by its length like any other (BM25 would lift it).

``relevance_key`` packs that order into one 63-bit integer, smaller = more relevant:
``min(words, 127) << 56 | min(newest minute, 2**28-1) << 28 | (id & 2**28-1)``, where the
middle part is ``sort_key``'s newer-is-smaller time (migration 0003) in minutes, so ties are
newest first to the minute and then by caption id (``sort_key`` has whole seconds; 7 + 28 + 28
bits is all a positive 64-bit integer holds). ``words`` is the caption's token count as the
full-text index counts it: SQLite reads it from FTS5's own per-row size
(``captions_fts_docsize``, one varint per column: the document length ``bm25()`` uses);
PostgreSQL counts the tokens of its text parser (``ts_parse``), stop words included as FTS5
counts them, a hyphenated word as its parts; they differ only on numbers with a point and
paths/URLs (``3.5``: FTS5 two tokens, PostgreSQL one).

SQLite: a second FTS5 table ``captions_rel_fts`` (external content, rowid = ``relevance_key``),
kept by the same triggers as ``captions_fts``, so ``ORDER BY rowid LIMIT n`` walks the matches
most relevant first and stops after ``n``. PostgreSQL: ``relevance_key`` is set by a BEFORE
trigger whose name sorts after ``captions_sort_key_bi`` (PostgreSQL fires triggers of one event
in name order, and the key needs ``sort_key``), with a unique B-tree. Walking that B-tree alone
is slow when the matches are all long captions ("beach" is never in the many one-name captions,
1.3 s at a million), and the GIN index gives no order, so ``caption_lexemes`` (lexeme,
relevance_key; primary key in that order, kept by an AFTER trigger from ``text_tsv``) lists each
lexeme's captions most relevant first, as FTS5's doclists do: a search walks its rarest word's
list and stops after one page. Filled tables are backfilled: SQLite from the existing index's
sizes, PostgreSQL by a one-off generated column that is then made a plain one (one table
rewrite instead of a million row updates), then one bulk insert of the lexemes.

Revision ID: 0013
Revises: 0012
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WORDS_MAX = 127  # 7 bits; longer captions tie at 127 words (then newest first)
MINUTES_MAX = 2**28 - 1
ID_BITS = 28
ID_MASK = 2**ID_BITS - 1
WORD_SHIFT = 56


def relevance_key(words: str, sort_key: str, least: str) -> str:
    """SQL for the packed key of a caption with ``words`` tokens and ``sort_key``; ``least`` is the
    dialect's two-argument minimum (SQLite ``min``, PostgreSQL ``least``). Integer arithmetic."""
    minutes = f"{least}(({sort_key} >> {ID_BITS}) / 60, {MINUTES_MAX})"
    return f"(({least}({words}, {WORDS_MAX}) << {WORD_SHIFT}) + ({minutes} << {ID_BITS}) + ({sort_key} & {ID_MASK}))"


def _sqlite_key(sort_key: str) -> str:
    """The key of the row ``sort_key`` of ``captions_fts``, its words read from FTS5's own size of it
    (``captions_fts_docsize.sz``, one varint per column: one byte 0-127 is the count itself, more
    bytes mean 128+ words, clamped to 127 anyway); no row counts as 0 words."""
    words = (
        "coalesce((SELECT CASE WHEN length(sz) = 1 THEN coalesce(unicode(CAST(sz AS TEXT)), 0) "
        f"ELSE {WORDS_MAX} END FROM captions_fts_docsize WHERE id = {sort_key}), 0)"
    )
    return relevance_key(words, sort_key, "min")


SQLITE_FTS_OPTIONS = "tokenize='porter unicode61 remove_diacritics 2', prefix='2 3'"

SQLITE_UPGRADE = [
    "ALTER TABLE captions ADD COLUMN relevance_key BIGINT",
    f"UPDATE captions SET relevance_key = {_sqlite_key('sort_key')} WHERE sort_key IS NOT NULL",
    "CREATE UNIQUE INDEX ix_captions_relevance_key ON captions (relevance_key)",
    "CREATE VIRTUAL TABLE captions_rel_fts USING fts5(text, content='captions', content_rowid='relevance_key', "
    f"columnsize=0, {SQLITE_FTS_OPTIONS})",
    "DROP TRIGGER IF EXISTS captions_fts_au",
    "DROP TRIGGER IF EXISTS captions_fts_ad",
    # Both indexes in one trigger: the old rows leave with their old text, then captions_fts
    # takes the new text (and so its size), from which the new relevance key is computed.
    "CREATE TRIGGER captions_fts_au AFTER UPDATE OF text, sort_key ON captions BEGIN "
    "INSERT INTO captions_fts(captions_fts, rowid, text) SELECT 'delete', old.sort_key, old.text "
    "WHERE old.sort_key IS NOT NULL; "
    "INSERT INTO captions_rel_fts(captions_rel_fts, rowid, text) SELECT 'delete', old.relevance_key, old.text "
    "WHERE old.relevance_key IS NOT NULL; "
    "INSERT INTO captions_fts(rowid, text) SELECT new.sort_key, new.text WHERE new.sort_key IS NOT NULL; "
    f"UPDATE captions SET relevance_key = CASE WHEN new.sort_key IS NULL THEN NULL ELSE {_sqlite_key('new.sort_key')} "
    "END WHERE id = new.id; "
    "INSERT INTO captions_rel_fts(rowid, text) SELECT relevance_key, text FROM captions "
    "WHERE id = new.id AND relevance_key IS NOT NULL; END",
    "CREATE TRIGGER captions_fts_ad AFTER DELETE ON captions BEGIN "
    "INSERT INTO captions_fts(captions_fts, rowid, text) SELECT 'delete', old.sort_key, old.text "
    "WHERE old.sort_key IS NOT NULL; "
    "INSERT INTO captions_rel_fts(captions_rel_fts, rowid, text) SELECT 'delete', old.relevance_key, old.text "
    "WHERE old.relevance_key IS NOT NULL; END",
    "INSERT INTO captions_rel_fts(captions_rel_fts) VALUES ('rebuild')",
]

SQLITE_DOWNGRADE = [
    "DROP TRIGGER IF EXISTS captions_fts_au",
    "DROP TRIGGER IF EXISTS captions_fts_ad",
    "DROP TABLE IF EXISTS captions_rel_fts",
    "DROP INDEX IF EXISTS ix_captions_relevance_key",
    "ALTER TABLE captions DROP COLUMN relevance_key",
    # revision 0003's triggers, as they were
    "CREATE TRIGGER captions_fts_au AFTER UPDATE OF text, sort_key ON captions BEGIN "
    "INSERT INTO captions_fts(captions_fts, rowid, text) SELECT 'delete', old.sort_key, old.text "
    "WHERE old.sort_key IS NOT NULL; "
    "INSERT INTO captions_fts(rowid, text) SELECT new.sort_key, new.text WHERE new.sort_key IS NOT NULL; END",
    "CREATE TRIGGER captions_fts_ad AFTER DELETE ON captions WHEN old.sort_key IS NOT NULL BEGIN "
    "INSERT INTO captions_fts(captions_fts, rowid, text) VALUES ('delete', old.sort_key, old.text); END",
]

POSTGRES_UPGRADE = [
    # the text parser's tokens, less blanks (12) and whole hyphenated words (15-17), whose parts count
    "CREATE FUNCTION caption_word_count(t text) RETURNS integer LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ "
    "SELECT count(*)::integer FROM ts_parse('default', t) WHERE tokid NOT IN (12, 15, 16, 17) $$",
    "CREATE FUNCTION caption_relevance_key(words integer, sort_key bigint) RETURNS bigint LANGUAGE sql "
    f"IMMUTABLE PARALLEL SAFE AS $$ SELECT {relevance_key('words::bigint', 'sort_key', 'least')} $$",
    # backfill by one table rewrite, then a plain column kept by the trigger below
    "ALTER TABLE captions ADD COLUMN relevance_key BIGINT GENERATED ALWAYS AS "
    "(caption_relevance_key(caption_word_count(text), sort_key)) STORED",
    "ALTER TABLE captions ALTER COLUMN relevance_key DROP EXPRESSION",
    "CREATE FUNCTION captions_fill_relevance_key() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "NEW.relevance_key := caption_relevance_key(caption_word_count(NEW.text), NEW.sort_key); RETURN NEW; END $$",
    "CREATE TRIGGER captions_text_key_biu BEFORE INSERT OR UPDATE OF photo_id, text, sort_key ON captions "
    "FOR EACH ROW EXECUTE FUNCTION captions_fill_relevance_key()",
    "CREATE UNIQUE INDEX ix_captions_relevance_key ON captions (relevance_key)",
    # each lexeme's captions in relevance order, FTS5's doclists for PostgreSQL (see the docstring)
    "CREATE TABLE caption_lexemes (lexeme text NOT NULL, relevance_key bigint NOT NULL)",
    "INSERT INTO caption_lexemes (lexeme, relevance_key) SELECT t.lexeme, c.relevance_key "
    "FROM captions c, unnest(c.text_tsv) t WHERE c.relevance_key IS NOT NULL",
    "ALTER TABLE caption_lexemes ADD PRIMARY KEY (lexeme, relevance_key)",
    "CREATE FUNCTION captions_index_lexemes() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "IF TG_OP <> 'INSERT' AND OLD.relevance_key IS NOT NULL THEN DELETE FROM caption_lexemes "
    "WHERE lexeme = ANY (tsvector_to_array(OLD.text_tsv)) AND relevance_key = OLD.relevance_key; END IF; "
    "IF TG_OP <> 'DELETE' AND NEW.relevance_key IS NOT NULL THEN INSERT INTO caption_lexemes (lexeme, relevance_key) "
    "SELECT lexeme, NEW.relevance_key FROM unnest(NEW.text_tsv); END IF; RETURN NULL; END $$",
    "CREATE TRIGGER captions_lexemes_aiud AFTER INSERT OR DELETE OR UPDATE OF photo_id, text, sort_key ON captions "
    "FOR EACH ROW EXECUTE FUNCTION captions_index_lexemes()",
    # the search picks its plan from these statistics; without them every lexeme looks alike
    "ANALYZE caption_lexemes",
]

POSTGRES_DOWNGRADE = [
    "DROP TRIGGER IF EXISTS captions_lexemes_aiud ON captions",
    "DROP FUNCTION IF EXISTS captions_index_lexemes()",
    "DROP TABLE IF EXISTS caption_lexemes",
    "DROP TRIGGER IF EXISTS captions_text_key_biu ON captions",
    "DROP FUNCTION IF EXISTS captions_fill_relevance_key()",
    "DROP INDEX IF EXISTS ix_captions_relevance_key",
    "ALTER TABLE captions DROP COLUMN IF EXISTS relevance_key",
    "DROP FUNCTION IF EXISTS caption_relevance_key(integer, bigint)",
    "DROP FUNCTION IF EXISTS caption_word_count(text)",
]


def upgrade() -> None:
    statements = SQLITE_UPGRADE if op.get_bind().dialect.name == "sqlite" else POSTGRES_UPGRADE
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    statements = SQLITE_DOWNGRADE if op.get_bind().dialect.name == "sqlite" else POSTGRES_DOWNGRADE
    for statement in statements:
        op.execute(statement)
