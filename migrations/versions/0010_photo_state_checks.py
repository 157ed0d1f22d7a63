"""CHECK constraints: photos.state holds a PhotoState, photos.work a WorkKind.

SQLite cannot add a constraint to a table, so batch mode copies ``photos`` into a new table. The
views and triggers (SQLite checks those that name ``photos`` when a table is renamed, and the
copy would lose the triggers on ``photos``) are dropped around the copy and recreated unchanged.

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from pipeline.store.state_names import PhotoState, WorkKind, check_sql

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHECKS = {"ck_photos_state": check_sql("state", PhotoState), "ck_photos_work": check_sql("work", WorkKind)}


def _saved_views() -> list[tuple[str, str, str]]:
    """SQLite: (type, name, CREATE statement) of every view and trigger, dropped until
    :func:`_restore_views` creates them again."""
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return []
    query = "SELECT type, name, sql FROM sqlite_master WHERE type IN ('view', 'trigger') ORDER BY type DESC"
    saved = [(kind, name, sql) for kind, name, sql in bind.execute(sa.text(query)).all()]
    for kind, name, _sql in saved:
        op.execute(f"DROP {kind.upper()} {name}")
    return saved


def _restore_views(saved: list[tuple[str, str, str]]) -> None:
    for _kind, _name, sql in saved:
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
