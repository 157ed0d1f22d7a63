"""photos.path_bytes: the exact bytes of a file name that is not UTF-8

``path`` stays readable text (undecodable bytes shown as ``\\xNN``); ``path_bytes`` keeps the name
without loss so the file can be opened (NULL for every UTF-8 name).

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ALTER TABLE (SQLite supports ADD/DROP COLUMN): a batch copy would trip over the views.
    op.add_column("photos", sa.Column("path_bytes", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    op.drop_column("photos", "path_bytes")
