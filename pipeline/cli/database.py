"""``pipeline db upgrade`` and ``db current``: the schema (Alembic migrations)."""

from __future__ import annotations

from typing import Annotated

import typer

from pipeline.cli.app import UserError, app, out, settings

db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision")] = "head") -> None:
    """Create or upgrade the database schema."""
    from alembic.util import CommandError

    from pipeline.store.db import current_revision, upgrade

    try:
        upgrade(settings().db_url, revision)
    except CommandError as exc:  # an unknown or unreachable revision; nothing was changed
        raise UserError(f"{exc}; `pipeline db current` shows the revisions (give `head` or leave it out)") from exc
    out.print(f"database {settings().db_url} at revision {current_revision()}")


@db_app.command("current")
def db_current() -> None:
    """Show the database's schema revision."""
    from pipeline.store.db import current_revision, head_revision

    out.print(f"current {current_revision()} (latest {head_revision()})")
