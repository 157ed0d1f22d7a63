"""Clusters of unknown faces (``clusters``, ``faces.cluster_id``) and where a reference came from
(``reference_images.source``, ``face_id``, ``photo_id``). The ``photo_people`` view is unchanged.

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "clusters",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("n_faces", sa.Integer(), nullable=False),
        sa.Column("centroid_sum", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_clusters_status", "clusters", ["status"])
    op.add_column("faces", sa.Column("cluster_id", sa.Integer(), nullable=True))
    op.create_index("ix_faces_cluster_id", "faces", ["cluster_id"])
    op.add_column("reference_images", sa.Column("source", sa.String(20), nullable=False, server_default="enrolment"))
    op.add_column("reference_images", sa.Column("face_id", sa.Integer(), nullable=True))
    op.add_column("reference_images", sa.Column("photo_id", sa.Integer(), nullable=True))


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite >= 3.35, PostgreSQL): a batch copy would have to recreate the views.
    for column in ("photo_id", "face_id", "source"):
        op.execute(f"ALTER TABLE reference_images DROP COLUMN {column}")
    op.drop_index("ix_faces_cluster_id", table_name="faces")
    op.execute("ALTER TABLE faces DROP COLUMN cluster_id")
    op.drop_index("ix_clusters_status", table_name="clusters")
    op.drop_table("clusters")
