"""Person pages from one index: ``faces.photo_time`` and ``faces (person_id, photo_time, photo_id)``.

``photo_time`` is the face's photo's time in seconds since the epoch (``taken_at``, else the
file's ``mtime``), or NULL while the photo is ``missing``. Triggers keep it in step when a face is
written or a photo's time or state changes, so every writer (ORM, bulk insert, plain SQL) gets it.
With the index, a person's photo count and last-seen time read the index alone, and their photos
newest first are an index walk that stops after one page (100,000 photos, 300,000 faces: the
People and Person pages stay well under 200 ms). Replaces revision 0005's (person_id, photo_id).

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _sqlite_time(photo: str) -> str:
    return (
        f"CASE WHEN {photo}.state = 'missing' THEN NULL "
        f"ELSE coalesce(CAST(strftime('%s', {photo}.taken_at) AS REAL), {photo}.mtime) END"
    )


SQLITE_UPGRADE = [
    "UPDATE faces SET photo_time = (SELECT " + _sqlite_time("p") + " FROM photos p WHERE p.id = faces.photo_id)",
    "CREATE TRIGGER faces_photo_time_ai AFTER INSERT ON faces BEGIN "
    "UPDATE faces SET photo_time = (SELECT " + _sqlite_time("p") + " FROM photos p WHERE p.id = new.photo_id) "
    "WHERE id = new.id; END",
    "CREATE TRIGGER photos_face_time_au AFTER UPDATE OF taken_at, mtime, state ON photos "
    "WHEN new.taken_at IS NOT old.taken_at OR new.mtime IS NOT old.mtime "
    "OR (new.state = 'missing') IS NOT (old.state = 'missing') BEGIN "
    "UPDATE faces SET photo_time = " + _sqlite_time("new") + " WHERE photo_id = new.id; END",
]
SQLITE_DOWNGRADE = ["DROP TRIGGER IF EXISTS photos_face_time_au", "DROP TRIGGER IF EXISTS faces_photo_time_ai"]

PG_TIME = (
    "CASE WHEN {p}.state = 'missing' THEN NULL "
    "ELSE coalesce(extract(epoch FROM {p}.taken_at)::double precision, {p}.mtime) END"
)
POSTGRES_UPGRADE = [
    "UPDATE faces f SET photo_time = " + PG_TIME.format(p="p") + " FROM photos p WHERE p.id = f.photo_id",
    "CREATE FUNCTION faces_fill_photo_time() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "NEW.photo_time := (SELECT " + PG_TIME.format(p="p") + " FROM photos p WHERE p.id = NEW.photo_id); "
    "RETURN NEW; END $$",
    "CREATE TRIGGER faces_photo_time_bi BEFORE INSERT OR UPDATE OF photo_id ON faces "
    "FOR EACH ROW EXECUTE FUNCTION faces_fill_photo_time()",
    "CREATE FUNCTION photos_face_time_changed() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "UPDATE faces SET photo_time = " + PG_TIME.format(p="NEW") + " WHERE photo_id = NEW.id; "
    "RETURN NULL; END $$",
    "CREATE TRIGGER photos_face_time_au AFTER UPDATE OF taken_at, mtime, state ON photos FOR EACH ROW "
    "WHEN (NEW.taken_at IS DISTINCT FROM OLD.taken_at OR NEW.mtime IS DISTINCT FROM OLD.mtime "
    "OR (NEW.state = 'missing') IS DISTINCT FROM (OLD.state = 'missing')) "
    "EXECUTE FUNCTION photos_face_time_changed()",
]
POSTGRES_DOWNGRADE = [
    "DROP TRIGGER IF EXISTS photos_face_time_au ON photos",
    "DROP TRIGGER IF EXISTS faces_photo_time_bi ON faces",
    "DROP FUNCTION IF EXISTS photos_face_time_changed()",
    "DROP FUNCTION IF EXISTS faces_fill_photo_time()",
]


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.add_column("faces", sa.Column("photo_time", sa.Float(), nullable=True))
    for statement in SQLITE_UPGRADE if sqlite else POSTGRES_UPGRADE:
        op.execute(statement)
    op.drop_index("ix_faces_person_id_photo_id", table_name="faces")
    op.create_index("ix_faces_person_id_photo_time", "faces", ["person_id", "photo_time", "photo_id"])


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.drop_index("ix_faces_person_id_photo_time", table_name="faces")
    op.create_index("ix_faces_person_id_photo_id", "faces", ["person_id", "photo_id"])
    for statement in SQLITE_DOWNGRADE if sqlite else POSTGRES_DOWNGRADE:
        op.execute(statement)
    op.execute("ALTER TABLE faces DROP COLUMN photo_time")  # SQLite 3.35+ too, keeping the views
