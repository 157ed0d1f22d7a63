"""photos.claimed_owner: which worker process holds a claim (fast recovery when it dies)

``claimed_owner`` is ``host/pid/start`` of the process that claimed the photo
(:mod:`pipeline.store.claim_owner`); while it works it refreshes ``claimed_at`` (heartbeat).

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ALTER TABLE (SQLite supports ADD/DROP COLUMN): a batch copy would trip over the views.
    op.add_column("photos", sa.Column("claimed_owner", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True))


def downgrade() -> None:
    op.drop_column("photos", "claimed_owner")
