"""The ``pipeline`` Typer application and what every command shares: global options, the two
consoles, settings, a database session, and the re-queue message.

Only typer and rich are imported here (the settings when a command runs); each command imports what it needs when it
runs, so ``pipeline --help`` and ``pipeline CMD --help`` stay fast and never touch CUDA.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from pipeline.errors import PipelineError
from pipeline.profile_names import PROFILE_NAMES, listed

if TYPE_CHECKING:
    from sqlmodel import Session

    from pipeline.config import Settings

app = typer.Typer(
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    help="Personalized photo-album tagger: enroll people once, tag every new photo with names, captions and answers.",
)

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


class UserError(PipelineError):
    """A problem with what the user asked for, found by the CLI itself (exit code 1)."""


def settings() -> Settings:
    """The effective settings of this command (global options applied)."""
    from pipeline.config import get_settings

    return get_settings()


def _set_env(name: str, value: object | None) -> None:
    if value is not None:
        from pipeline.config import get_settings

        os.environ[name] = str(value)
        get_settings.cache_clear()


@app.callback()
def _global(
    data_dir: Annotated[Path | None, typer.Option("--data-dir", help="Data directory (PIPELINE_DATA_DIR)")] = None,
    database_url: Annotated[str | None, typer.Option("--database-url", help="PIPELINE_DATABASE_URL")] = None,
    broker_url: Annotated[str | None, typer.Option("--broker-url", help="PIPELINE_BROKER_URL")] = None,
    profile: Annotated[str | None, typer.Option("--profile", help=f"{listed()} (PIPELINE_PROFILE)")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging; tracebacks for errors")] = False,
) -> None:
    """Global options override the environment for this command and the processes it starts."""
    if data_dir is not None:
        _set_env("PIPELINE_DATA_DIR", data_dir.expanduser().resolve())
    _set_env("PIPELINE_DATABASE_URL", database_url)
    _set_env("PIPELINE_BROKER_URL", broker_url)
    use_profile(profile)
    from rich.logging import RichHandler

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        handlers=[RichHandler(console=err, show_path=False, rich_tracebacks=True)],
        format="%(message)s",
    )


def use_profile(profile: str | None) -> None:
    """Apply a ``--profile`` option (global, or repeated after a sub-command as users type it)."""
    if profile is not None and profile not in PROFILE_NAMES:
        raise typer.BadParameter(f"unknown profile {profile!r}; choose {listed()}", param_hint="--profile")
    _set_env("PIPELINE_PROFILE", profile)


@contextmanager
def open_session() -> Iterator[Session]:
    """A session on the configured database (migrated first if needed) that commits on success."""
    from pipeline.store.db import ensure_schema, session_scope

    ensure_schema()
    with session_scope() as session:
        yield session


def report_requeued(ids: list[int]) -> None:
    """Send re-queued photos to the workers if a broker is reachable, and say what happens to them."""
    if not ids:
        return
    from pipeline.ingest.dispatch import send_requeued

    sent = send_requeued(settings(), ids)
    how = "sent to the workers" if sent else "queued; a running `pipeline run` picks them up"
    out.print(f"{len(ids)} photo(s) that could change will be re-matched ({how}).")
