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


@db_app.command("readonly-role")
def db_readonly_role(
    name: Annotated[str, typer.Option("--name", help="Role name")] = "pipeline_reader",
) -> None:
    """PostgreSQL: create (or refresh, with a new password) the read-only role `pipeline sql` uses.

    Run it as the database owner (who needs CREATEROLE). The role's URL is stored, readable by you
    only, in the data directory; re-run after `DROP SCHEMA`-style resets.
    """
    from sqlalchemy import create_engine
    from sqlalchemy.exc import DBAPIError

    from pipeline.store.reader_role import create_reader_role

    current = settings()
    if not current.db_url.startswith("postgresql"):
        raise UserError("the read-only role is for PostgreSQL; on SQLite `pipeline sql` opens the file read-only")
    engine = create_engine(current.db_url)
    try:
        with engine.begin() as conn:
            role = create_reader_role(conn, current.db_url, current.data_dir, name)
    except DBAPIError as exc:
        raise UserError(
            f"could not set up the read-only role: {str(exc.orig or exc).strip()}; "
            "run this as the database owner with the CREATEROLE privilege"
        ) from None
    finally:
        engine.dispose()
    out.print(f"read-only role {role.name}: {role.url} (URL with password stored in {role.url_file}, mode 0600)")
