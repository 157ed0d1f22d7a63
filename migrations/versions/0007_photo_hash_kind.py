"""Photos name their content hash: ``photos.hash_kind`` ('blake3' for new rows).

Existing rows keep their SHA-256 and get ``hash_kind = 'sha256'``, so nothing is hashed again or
re-tagged by the upgrade; the ingestor compares a touched file in its row's kind and moves a
row to BLAKE3 when it next reads the file.

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("photos", sa.Column("hash_kind", sa.String(16), nullable=False, server_default="sha256"))


def downgrade() -> None:
    # Rows hashed with BLAKE3 cannot be turned back into SHA-256 here: the next scan re-reads them.
    op.execute("UPDATE photos SET sha256 = '' WHERE hash_kind <> 'sha256'")
    op.execute("ALTER TABLE photos DROP COLUMN hash_kind")
