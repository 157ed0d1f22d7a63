"""Search newest first without ranking every match: a time-ordered ``captions.sort_key``.

``sort_key`` packs the photo's time (``taken_at``, else the file's ``mtime``) and the caption id
into one 64-bit integer: ``(2**34-1 - seconds since 1800-01-01, clamped) << 28 | (id & 2**28-1)``.
Smaller keys are newer photos: FTS5 walks its doclists fastest in ascending rowid order (a
descending walk of "common AND rare" reads the whole common doclist). Triggers keep it in step
when a caption is written or a photo's time changes, so every writer (ORM, bulk insert, plain
SQL) gets it.

SQLite: the FTS5 table ``captions_fts`` now uses ``sort_key`` as its rowid, so
``ORDER BY captions_fts.rowid LIMIT n`` walks the full-text index newest first and stops after
``n`` rows, whether the word matches ten captions or 300,000. Prefix queries (``Gra*``) get a
prefix index for 2- and 3-character prefixes.
PostgreSQL: a unique B-tree index on ``sort_key``; the planner either walks it newest first and
filters with the GIN-indexed ``text_tsv`` (common words) or reads the few GIN matches and sorts
them (rare words).

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EPOCH_OFFSET = 5_364_662_400  # seconds from 1800-01-01 to 1970-01-01
SECONDS_MAX = 2**34 - 1  # up to the year 2344
ID_BITS = 28
ID_MASK = 2**ID_BITS - 1


def _sqlite_key(taken_at: str, mtime: str, caption_id: str) -> str:
    seconds = f"CAST(coalesce(strftime('%s', {taken_at}), {mtime}) AS INTEGER) + {EPOCH_OFFSET}"
    newer_is_smaller = f"({SECONDS_MAX} - max(0, min({SECONDS_MAX}, {seconds})))"
    return f"(({newer_is_smaller} << {ID_BITS}) + ({caption_id} & {ID_MASK}))"


SQLITE_OLD_FTS = ["captions_fts_ai", "captions_fts_ad", "captions_fts_au"]
SQLITE_NEW_TRIGGERS = ["captions_sort_key_ai", "captions_fts_au", "captions_fts_ad", "photos_time_au"]

SQLITE_UPGRADE = [
    *(f"DROP TRIGGER IF EXISTS {name}" for name in SQLITE_OLD_FTS),
    "DROP TABLE IF EXISTS captions_fts",
    "ALTER TABLE captions ADD COLUMN sort_key BIGINT",
    "UPDATE captions SET sort_key = (SELECT "
    + _sqlite_key("p.taken_at", "p.mtime", "captions.id")
    + " FROM photos p WHERE p.id = captions.photo_id)",
    "CREATE UNIQUE INDEX ix_captions_sort_key ON captions (sort_key)",
    "CREATE VIRTUAL TABLE captions_fts USING fts5(text, content='captions', content_rowid='sort_key', "
    "tokenize='porter unicode61 remove_diacritics 2', prefix='2 3')",
    # A new caption gets its key from its photo; setting the key fires captions_fts_au below.
    "CREATE TRIGGER captions_sort_key_ai AFTER INSERT ON captions BEGIN "
    "UPDATE captions SET sort_key = (SELECT "
    + _sqlite_key("p.taken_at", "p.mtime", "new.id")
    + " FROM photos p WHERE p.id = new.photo_id) WHERE id = new.id; END",
    "CREATE TRIGGER captions_fts_au AFTER UPDATE OF text, sort_key ON captions BEGIN "
    "INSERT INTO captions_fts(captions_fts, rowid, text) SELECT 'delete', old.sort_key, old.text "
    "WHERE old.sort_key IS NOT NULL; "
    "INSERT INTO captions_fts(rowid, text) SELECT new.sort_key, new.text WHERE new.sort_key IS NOT NULL; END",
    "CREATE TRIGGER captions_fts_ad AFTER DELETE ON captions WHEN old.sort_key IS NOT NULL BEGIN "
    "INSERT INTO captions_fts(captions_fts, rowid, text) VALUES ('delete', old.sort_key, old.text); END",
    "CREATE TRIGGER photos_time_au AFTER UPDATE OF taken_at, mtime ON photos "
    "WHEN new.taken_at IS NOT old.taken_at OR new.mtime IS NOT old.mtime BEGIN "
    "UPDATE captions SET sort_key = "
    + _sqlite_key("new.taken_at", "new.mtime", "captions.id")
    + " WHERE photo_id = new.id; END",
    "INSERT INTO captions_fts(captions_fts) VALUES ('rebuild')",
]

SQLITE_DOWNGRADE = [
    *(f"DROP TRIGGER IF EXISTS {name}" for name in SQLITE_NEW_TRIGGERS),
    "DROP TABLE IF EXISTS captions_fts",
    "DROP INDEX IF EXISTS ix_captions_sort_key",
    "ALTER TABLE captions DROP COLUMN sort_key",
    # revision 0002's search table, as it was
    "CREATE VIRTUAL TABLE captions_fts USING fts5(text, content='captions', content_rowid='id', "
    "tokenize='porter unicode61 remove_diacritics 2')",
    "CREATE TRIGGER captions_fts_ai AFTER INSERT ON captions BEGIN "
    "INSERT INTO captions_fts(rowid, text) VALUES (new.id, new.text); END",
    "CREATE TRIGGER captions_fts_ad AFTER DELETE ON captions BEGIN "
    "INSERT INTO captions_fts(captions_fts, rowid, text) VALUES ('delete', old.id, old.text); END",
    "CREATE TRIGGER captions_fts_au AFTER UPDATE ON captions BEGIN "
    "INSERT INTO captions_fts(captions_fts, rowid, text) VALUES ('delete', old.id, old.text); "
    "INSERT INTO captions_fts(rowid, text) VALUES (new.id, new.text); END",
    "INSERT INTO captions_fts(captions_fts) VALUES ('rebuild')",
]

POSTGRES_UPGRADE = [
    "ALTER TABLE captions ADD COLUMN sort_key BIGINT",
    "CREATE FUNCTION caption_sort_key(taken_at timestamptz, mtime double precision, caption_id bigint) "
    f"RETURNS bigint LANGUAGE sql IMMUTABLE AS $$ SELECT (({SECONDS_MAX} - least(greatest("
    f"floor(coalesce(extract(epoch FROM taken_at)::double precision, mtime))::bigint + {EPOCH_OFFSET}, 0), "
    f"{SECONDS_MAX})) << {ID_BITS}) + (caption_id & {ID_MASK}) $$",
    "CREATE FUNCTION captions_fill_sort_key() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "NEW.sort_key := (SELECT caption_sort_key(p.taken_at, p.mtime, NEW.id) FROM photos p WHERE p.id = NEW.photo_id); "
    "RETURN NEW; END $$",
    "CREATE TRIGGER captions_sort_key_bi BEFORE INSERT OR UPDATE OF photo_id ON captions "
    "FOR EACH ROW EXECUTE FUNCTION captions_fill_sort_key()",
    "CREATE FUNCTION photos_time_changed() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "UPDATE captions SET sort_key = caption_sort_key(NEW.taken_at, NEW.mtime, id) WHERE photo_id = NEW.id; "
    "RETURN NULL; END $$",
    "CREATE TRIGGER photos_time_au AFTER UPDATE OF taken_at, mtime ON photos FOR EACH ROW "
    "WHEN (NEW.taken_at IS DISTINCT FROM OLD.taken_at OR NEW.mtime IS DISTINCT FROM OLD.mtime) "
    "EXECUTE FUNCTION photos_time_changed()",
    "UPDATE captions c SET sort_key = caption_sort_key(p.taken_at, p.mtime, c.id) "
    "FROM photos p WHERE p.id = c.photo_id",
    "CREATE UNIQUE INDEX ix_captions_sort_key ON captions (sort_key)",
]

POSTGRES_DOWNGRADE = [
    "DROP TRIGGER IF EXISTS photos_time_au ON photos",
    "DROP TRIGGER IF EXISTS captions_sort_key_bi ON captions",
    "DROP FUNCTION IF EXISTS photos_time_changed()",
    "DROP FUNCTION IF EXISTS captions_fill_sort_key()",
    "DROP FUNCTION IF EXISTS caption_sort_key(timestamptz, double precision, bigint)",
    "DROP INDEX IF EXISTS ix_captions_sort_key",
    "ALTER TABLE captions DROP COLUMN IF EXISTS sort_key",
]


def upgrade() -> None:
    statements = SQLITE_UPGRADE if op.get_bind().dialect.name == "sqlite" else POSTGRES_UPGRADE
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    statements = SQLITE_DOWNGRADE if op.get_bind().dialect.name == "sqlite" else POSTGRES_DOWNGRADE
    for statement in statements:
        op.execute(statement)
