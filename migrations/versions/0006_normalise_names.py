"""Names compared after Unicode NFC and case folding: store every name in NFC and recompute its key.

Before this revision ``Zoë`` typed with a composed ``ë`` and with ``e`` + a combining diaeresis
were two people. Existing rows are normalised; if two people now have the same key, the later one
is renamed ``NAME (ID)`` (nothing is merged or lost) and a warning says to merge them with
``pipeline people merge``.

Revision ID: 0006
Revises: 0005
"""

import logging
import unicodedata
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("alembic.runtime.migration")


def _name(name: str) -> str:
    return unicodedata.normalize("NFC", " ".join(name.split()))


def _key(name: str) -> str:
    return unicodedata.normalize("NFC", _name(name).casefold())


def upgrade() -> None:
    conn = op.get_bind()
    people = sa.table(
        "people", sa.column("id", sa.Integer), sa.column("name", sa.String), sa.column("name_key", sa.String)
    )
    rows = conn.execute(sa.select(people.c.id, people.c.name, people.c.name_key).order_by(people.c.id)).all()
    # First move every key out of the way (the unique constraint holds after each statement).
    conn.execute(people.update().values(name_key=sa.literal("#renormalising#") + sa.cast(people.c.id, sa.String)))
    taken: dict[str, str] = {}
    for person_id, name, _old_key in rows:
        new_name, key = _name(name), _key(name)
        if key in taken:
            log.warning(
                "people %r and %r are the same name after Unicode normalisation; kept both as %r and %r: "
                "merge them with `pipeline people merge`",
                taken[key],
                name,
                taken[key],
                f"{new_name} ({person_id})",
            )
            new_name = f"{new_name} ({person_id})"
            key = _key(new_name)
        taken[key] = new_name
        conn.execute(people.update().where(people.c.id == person_id).values(name=new_name, name_key=key))


def downgrade() -> None:
    pass  # NFC names and keys are valid for the older revisions too
