"""faces.plvm_score becomes faces.evidence_score: the recognition evidence of whichever profile ran
(the column name no longer names one profile). The ``photo_people`` view keeps its output column
``plvm_score`` (users' SQL keeps working): both databases rewrite the view's reference in place.

Revision ID: 0012
Revises: 0011
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE faces RENAME COLUMN plvm_score TO evidence_score")


def downgrade() -> None:
    op.execute("ALTER TABLE faces RENAME COLUMN evidence_score TO plvm_score")
