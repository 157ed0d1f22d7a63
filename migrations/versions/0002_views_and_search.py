"""Views for plain SQL (photo_people, photo_captions) and full-text search over captions.

SQLite: an FTS5 table ``captions_fts`` kept in step with ``captions`` by triggers.
PostgreSQL: a generated ``tsvector`` column ``captions.text_tsv`` with a GIN index.

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PHOTO_PEOPLE = """
CREATE VIEW photo_people AS
SELECT f.photo_id      AS photo_id,
       p.path          AS photo_path,
       pe.id           AS person_id,
       pe.name         AS person_name,
       f.match_score   AS score,
       f.plvm_score    AS plvm_score,
       f.user_set      AS user_set,
       f.id            AS face_id,
       f.x AS box_x, f.y AS box_y, f.w AS box_w, f.h AS box_h,
       p.taken_at      AS taken_at
FROM faces f
JOIN photos p  ON p.id = f.photo_id
JOIN people pe ON pe.id = f.person_id
WHERE p.state <> 'missing'
"""

PHOTO_CAPTIONS = """
CREATE VIEW photo_captions AS
SELECT c.photo_id      AS photo_id,
       p.path          AS photo_path,
       c.text          AS caption,
       p.taken_at      AS taken_at,
       c.profile       AS profile,
       c.model_version AS model_version,
       c.created_at    AS created_at
FROM captions c
JOIN photos p ON p.id = c.photo_id
WHERE p.state <> 'missing'
"""

SQLITE_FTS = [
    "CREATE VIRTUAL TABLE captions_fts USING fts5(text, content='captions', content_rowid='id', "
    "tokenize='porter unicode61 remove_diacritics 2')",
    "CREATE TRIGGER captions_fts_ai AFTER INSERT ON captions BEGIN "
    "INSERT INTO captions_fts(rowid, text) VALUES (new.id, new.text); END",
    "CREATE TRIGGER captions_fts_ad AFTER DELETE ON captions BEGIN "
    "INSERT INTO captions_fts(captions_fts, rowid, text) VALUES ('delete', old.id, old.text); END",
    "CREATE TRIGGER captions_fts_au AFTER UPDATE ON captions BEGIN "
    "INSERT INTO captions_fts(captions_fts, rowid, text) VALUES ('delete', old.id, old.text); "
    "INSERT INTO captions_fts(rowid, text) VALUES (new.id, new.text); END",
    "INSERT INTO captions_fts(rowid, text) SELECT id, text FROM captions",
]

POSTGRES_FTS = [
    "ALTER TABLE captions ADD COLUMN text_tsv tsvector GENERATED ALWAYS AS (to_tsvector('english', text)) STORED",
    "CREATE INDEX ix_captions_text_tsv ON captions USING gin (text_tsv)",
]


def upgrade() -> None:
    op.execute(PHOTO_PEOPLE)
    op.execute(PHOTO_CAPTIONS)
    statements = SQLITE_FTS if op.get_bind().dialect.name == "sqlite" else POSTGRES_FTS
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS photo_captions")
    op.execute("DROP VIEW IF EXISTS photo_people")
    if op.get_bind().dialect.name == "sqlite":
        for trigger in ("captions_fts_ai", "captions_fts_ad", "captions_fts_au"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS captions_fts")
    else:
        op.execute("DROP INDEX IF EXISTS ix_captions_text_tsv")
        op.execute("ALTER TABLE captions DROP COLUMN IF EXISTS text_tsv")
