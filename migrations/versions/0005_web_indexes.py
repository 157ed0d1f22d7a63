"""Indexes for the web app's pages on large albums (100,000 photos, 300,000 faces).

- ``faces (person_id, photo_id)``: a person's photo count and photo list read the index alone.
- ``photos (state, done_at)``: the Status page's most recent failures.

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_faces_person_id_photo_id", "faces", ["person_id", "photo_id"])
    op.create_index("ix_photos_state_done_at", "photos", ["state", "done_at"])


def downgrade() -> None:
    op.drop_index("ix_photos_state_done_at", table_name="photos")
    op.drop_index("ix_faces_person_id_photo_id", table_name="faces")
