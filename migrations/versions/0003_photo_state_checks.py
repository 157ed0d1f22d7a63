"""CHECK constraints: photos.state holds a PhotoState, photos.work a WorkKind.

SQLite cannot add a constraint to a table, so batch mode copies ``photos`` into a new table; the
views that read ``photos`` are dropped around the copy (SQLite checks views when a table is
renamed) and recreated unchanged.

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from pipeline.store.state_names import PhotoState, WorkKind, check_sql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHECKS = {"ck_photos_state": check_sql("state", PhotoState), "ck_photos_work": check_sql("work", WorkKind)}
VIEWS = ("photo_people", "photo_captions")


def _saved_views() -> dict[str, str]:
    """SQLite: the CREATE VIEW statements of the views over photos, dropped until restored."""
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return {}
    rows = bind.execute(sa.text("SELECT name, sql FROM sqlite_master WHERE type = 'view'")).all()
    saved = {name: sql for name, sql in rows if name in VIEWS}
    for name in saved:
        op.execute(f"DROP VIEW {name}")
    return saved


def _restore_views(saved: dict[str, str]) -> None:
    for sql in saved.values():
        op.execute(sql)


def upgrade() -> None:
    bad = op.get_bind().execute(
        sa.text(f"SELECT count(*) FROM photos WHERE NOT ({CHECKS['ck_photos_state']} AND {CHECKS['ck_photos_work']})")
    )
    if bad.scalar_one():
        raise RuntimeError("photos rows hold an unknown state or work kind; fix them before upgrading")
    saved = _saved_views()
    with op.batch_alter_table("photos") as batch_op:
        for name, condition in CHECKS.items():
            batch_op.create_check_constraint(op.f(name), condition)
    _restore_views(saved)


def downgrade() -> None:
    saved = _saved_views()
    with op.batch_alter_table("photos") as batch_op:
        for name in CHECKS:
            batch_op.drop_constraint(op.f(name), type_="check")
    _restore_views(saved)
