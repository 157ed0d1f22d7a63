"""The ``pipeline`` command. Heavy imports happen inside commands so ``--help`` stays fast and
this process never touches CUDA."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from pipeline.config import Settings, get_settings

app = typer.Typer(
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    help="Personalized photo-album tagger: enroll people once, tag every new photo with names, captions and answers.",
)
people_app = typer.Typer(help="List, rename, merge and forget enrolled people.", invoke_without_command=True)
db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)
app.add_typer(people_app, name="people")
app.add_typer(db_app, name="db")

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


class UserError(Exception):
    """An error to print without a traceback (exit code 1)."""


def settings() -> Settings:
    return get_settings()


def _set_env(name: str, value: object | None) -> None:
    if value is not None:
        os.environ[name] = str(value)
        get_settings.cache_clear()


@app.callback()
def _global(
    data_dir: Annotated[Optional[Path], typer.Option("--data-dir", help="Data directory (PIPELINE_DATA_DIR)")] = None,
    database_url: Annotated[Optional[str], typer.Option("--database-url", help="PIPELINE_DATABASE_URL")] = None,
    broker_url: Annotated[Optional[str], typer.Option("--broker-url", help="PIPELINE_BROKER_URL")] = None,
    profile: Annotated[Optional[str], typer.Option("--profile", help="faces, plvm or tiny (PIPELINE_PROFILE)")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging")] = False,
) -> None:
    """Global options override the environment for this command and the processes it starts."""
    if data_dir is not None:
        _set_env("PIPELINE_DATA_DIR", data_dir.expanduser().resolve())
    _set_env("PIPELINE_DATABASE_URL", database_url)
    _set_env("PIPELINE_BROKER_URL", broker_url)
    if profile is not None and profile not in ("faces", "plvm", "tiny"):
        raise typer.BadParameter(f"unknown profile {profile!r}; choose faces, plvm or tiny", param_hint="--profile")
    _set_env("PIPELINE_PROFILE", profile)
    from rich.logging import RichHandler

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        handlers=[RichHandler(console=err, show_path=False, rich_tracebacks=True)],
        format="%(message)s",
    )


def _session():  # type: ignore[no-untyped-def]
    from pipeline.db import ensure_schema, session_scope

    ensure_schema()
    return session_scope()


def _broker_dispatcher():  # type: ignore[no-untyped-def]
    from pipeline.broker import resolve_broker_url
    from pipeline.dispatch import Dispatcher

    s = settings()
    return Dispatcher(resolve_broker_url(s), s)


def _requeued(ids: list[int]) -> None:
    if not ids:
        return
    sent = _broker_dispatcher().send(ids)
    how = "sent to the workers" if sent else "queued; a running `pipeline run` picks them up"
    out.print(f"{len(ids)} photo(s) that could change will be re-matched ({how}).")


# --- configuration and database -----------------------------------------------------------


@app.command()
def config(as_json: Annotated[bool, typer.Option("--json", help="JSON output")] = False) -> None:
    """Print the effective configuration."""
    values = settings().effective()
    if as_json:
        out.print_json(json.dumps(values))
        return
    table = Table("setting", "value", title="effective configuration")
    for key, value in values.items():
        table.add_row(key, json.dumps(value) if isinstance(value, (list, dict)) else str(value))
    out.print(table)


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision")] = "head") -> None:
    """Create or upgrade the database schema."""
    from pipeline.db import current_revision, upgrade

    upgrade(settings().db_url, revision)
    out.print(f"database {settings().db_url} at revision {current_revision()}")


@db_app.command("current")
def db_current() -> None:
    """Show the database's schema revision."""
    from pipeline.db import current_revision, head_revision

    out.print(f"current {current_revision()} (latest {head_revision()})")


# --- people -----------------------------------------------------------------------------


@app.command()
def enroll(
    name: Annotated[str, typer.Option("--name", "-n", help="The person's name (unique, ignoring case)")],
    images: Annotated[list[Path], typer.Argument(help="Reference photo(s) with the person's face", exists=True, dir_okay=False, readable=True)],
    face: Annotated[Optional[int], typer.Option("--face", help="Which face to use when a photo has several (0 = leftmost)")] = None,
) -> None:
    """Enroll a person from one or more reference photos (adds references if the name exists)."""
    from pipeline.people import enroll as do_enroll

    with _session() as session:
        result = do_enroll(session, settings(), name, images, face)
    verb = "enrolled" if result.created else "updated"
    dup = f", {result.skipped_duplicates} already known" if result.skipped_duplicates else ""
    out.print(f"{verb} {result.name} (id {result.person_id}): {result.added_references} reference(s) added{dup}")
    _requeued(result.requeued_photo_ids)


@people_app.callback()
def people_list(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List people with their reference and photo counts."""
    if ctx.invoked_subcommand is not None:
        return
    from pipeline.people import list_people

    with _session() as session:
        rows = list_people(session)
    if as_json:
        out.print_json(json.dumps(rows, default=str))
        return
    table = Table("name", "references", "photos", "enrolled")
    for row in rows:
        table.add_row(str(row["name"]), str(row["references"]), str(row["photos"]), str(row["enrolled"])[:19])
    out.print(table if rows else "nobody enrolled yet: `pipeline enroll --name NAME photo.jpg`")


def _people_change(operation: str, *args: str) -> list[int]:
    """Run ``pipeline.people.<operation>(session, *args)`` in one transaction; returns re-queued ids."""
    from pipeline import people

    with _session() as session:
        return list(getattr(people, operation)(session, *args))


@people_app.command("rename")
def people_rename(old: str, new: str) -> None:
    """Rename a person (captions that use the name are redone)."""
    ids = _people_change("rename", old, new)
    out.print(f"renamed {old} -> {new}")
    _requeued(ids)


@people_app.command("merge")
def people_merge(source: str, target: str) -> None:
    """Merge SOURCE into TARGET (references and tagged faces move; SOURCE is removed)."""
    ids = _people_change("merge", source, target)
    out.print(f"merged {source} into {target}")
    _requeued(ids)


@people_app.command("forget")
def people_forget(name: str) -> None:
    """Forget a person: remove references and embeddings, un-tag their faces."""
    ids = _people_change("forget", name)
    out.print(f"forgot {name}")
    _requeued(ids)


@app.command()
def correct(
    face_id: Annotated[int, typer.Argument(help="faces.id (photo_people.face_id)")],
    name: Annotated[Optional[str], typer.Option("--name", help="This face is NAME")] = None,
    not_name: Annotated[Optional[str], typer.Option("--not", help="This face is not NAME")] = None,
) -> None:
    """Correct one face's name; the correction outranks the model from then on."""
    from pipeline.people import correct_face

    with _session() as session:
        ids = correct_face(session, face_id, name, not_name)
    out.print(f"face {face_id}: " + (f"is {name}" if name else f"is not {not_name}"))
    _requeued(ids)


# --- running -----------------------------------------------------------------------------


@app.command()
def run(
    folders: Annotated[list[Path], typer.Argument(help="Folders to watch (default: PIPELINE_WATCH)")] = [],  # noqa: B006
    flower: Annotated[bool, typer.Option("--flower", help="Also start Flower")] = False,
    flower_port: Annotated[int, typer.Option("--flower-port")] = 5555,
    until_idle: Annotated[bool, typer.Option("--until-idle", help="Exit once every photo is processed")] = False,
) -> None:
    """Embedded broker (unless configured) + a worker + the watcher, with progress. Ctrl-C stops all."""
    from pipeline.runner import RunOptions, run as do_run

    s = settings()
    chosen = [f.expanduser().resolve() for f in folders] or s.watch
    if not chosen:
        raise UserError("give a folder to watch (or set PIPELINE_WATCH)")
    code = do_run(s, RunOptions(folders=chosen, flower=flower, flower_port=flower_port, until_idle=until_idle), out.print)
    raise typer.Exit(code)


@app.command()
def watch(folders: Annotated[list[Path], typer.Argument(help="Folders to watch")] = []) -> None:  # noqa: B006
    """Run the watcher alone (multi-process deployments: workers run elsewhere)."""
    import threading

    from pipeline.broker import resolve_broker_url
    from pipeline.db import ensure_schema
    from pipeline.dispatch import Dispatcher, Sweeper, send_all_queued
    from pipeline.ingest import Ingestor, make_watcher

    s = settings()
    chosen = [f.expanduser().resolve() for f in folders] or s.watch
    if not chosen:
        raise UserError("give a folder to watch (or set PIPELINE_WATCH)")
    for folder in chosen:
        if not folder.is_dir():
            raise UserError(f"{folder}: not a folder")
    ensure_schema()
    broker = resolve_broker_url(s)
    if broker is None:
        err.print("[yellow]no broker reachable: photos are registered as queued and sent once it is[/]")
    dispatcher = Dispatcher(broker or s.broker_url, s)
    if broker is not None:
        dispatcher.connect()
    send_all_queued(s, dispatcher)
    ingestor = Ingestor(dispatcher)
    watcher = make_watcher(chosen, ingestor, s)
    sweeper = Sweeper(s, dispatcher)
    stop = threading.Event()
    import signal

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    watcher.start()
    sweeper.start()
    out.print("watching " + ", ".join(map(str, chosen)))
    stop.wait()
    watcher.stop()
    dispatcher.close()
    sweeper.stop()


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def worker(ctx: typer.Context) -> None:
    """Start a Celery worker on the gpu queue with the pipeline's defaults (extra flags pass through)."""
    from pipeline.broker import resolve_broker_url
    from pipeline.runner import worker_command

    s = settings()
    broker = resolve_broker_url(s)
    if broker is None:
        raise UserError("no broker: set PIPELINE_BROKER_URL, or start `pipeline run` which embeds one")
    os.environ["PIPELINE_BROKER_URL"] = broker
    os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")
    command = worker_command(f"pipeline-{os.getpid()}@%h", list(ctx.args))
    os.execv(command[0], command)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def flower(ctx: typer.Context, port: Annotated[int, typer.Option("--port")] = 5555) -> None:
    """Start Flower against the configured (or running embedded) broker; extra flags pass through."""
    from pipeline.broker import resolve_broker_url
    from pipeline.runner import flower_command

    broker = resolve_broker_url(settings())
    if broker is None:
        raise UserError("no broker: set PIPELINE_BROKER_URL, or start `pipeline run`")
    os.environ["PIPELINE_BROKER_URL"] = broker
    command = flower_command(port, list(ctx.args))
    os.execv(command[0], command)


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json")] = False,
    failures: Annotated[int, typer.Option("--failures", help="How many recent failures to show")] = 10,
) -> None:
    """Photos per state, queue length, and the last failures with their reasons."""
    from sqlmodel import select

    from pipeline.broker import queue_length, resolve_broker_url
    from pipeline.models import Photo
    from pipeline.people import enrolment_version
    from pipeline.progress import state_counts

    s = settings()
    broker = resolve_broker_url(s)
    with _session() as session:
        counts = state_counts(session)
        failed = session.exec(
            select(Photo).where(Photo.state == "failed").order_by(Photo.done_at.desc()).limit(failures)  # type: ignore[union-attr]
        ).all()
        version = enrolment_version(session)
    data = {
        "states": counts,
        "queue_length": queue_length(broker) if broker else None,
        "broker": broker,
        "enrolment_version": version,
        "profile": s.profile,
        "last_failures": [{"path": p.path, "error": p.error, "attempts": p.attempts} for p in failed],
    }
    if as_json:
        out.print_json(json.dumps(data))
        return
    out.print("photos: " + "  ".join(f"{k} {v}" for k, v in counts.items()))
    out.print(f"queue: {data['queue_length'] if broker else 'no broker running'}   enrolment version: {version}   profile: {s.profile}")
    if failed:
        table = Table("photo", "reason", "attempts", title="last failures")
        for p in failed:
            table.add_row(p.path, p.error or "", str(p.attempts))
        out.print(table)


@app.command()
def retry(
    what: Annotated[str, typer.Argument(help="'failed' (all failed photos) or a photo path")] = "failed",
) -> None:
    """Queue failed photos (or one photo) again, with a fresh attempt count."""
    from sqlalchemy import update
    from sqlmodel import select

    from pipeline.ingest import norm_path
    from pipeline.models import Photo, utcnow

    with _session() as session:
        where = Photo.state == "failed" if what == "failed" else Photo.path == norm_path(Path(what))
        ids = [int(i) for i in session.exec(select(Photo.id).where(where)).all()]  # type: ignore[arg-type]
        if not ids:
            raise UserError(f"nothing to retry for {what!r}")
        session.execute(
            update(Photo).where(Photo.id.in_(ids)).values(state="queued", work="tag", attempts=0, error=None, queued_at=utcnow())  # type: ignore[union-attr]
        )
    _requeued(ids)


# --- querying ----------------------------------------------------------------------------


@app.command()
def sql(
    query: Annotated[str, typer.Argument(help="One SQL statement; the connection is read-only")],
    as_json: Annotated[bool, typer.Option("--json", help="JSON array of objects")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="CSV with a header row")] = False,
) -> None:
    """Run a read-only SQL query (tables: people, photos, faces, captions, answers; views: photo_people, photo_captions)."""
    from pipeline.sqlquery import QueryError, ReadOnlyViolation, cell_text, run_readonly, to_csv, to_json

    if as_json and as_csv:
        raise typer.BadParameter("choose one of --json and --csv")
    try:
        result = run_readonly(settings().db_url, query)
    except (ReadOnlyViolation, QueryError, FileNotFoundError) as exc:
        raise UserError(str(exc)) from None
    if as_json:
        sys.stdout.write(to_json(result) + "\n")
    elif as_csv:
        sys.stdout.write(to_csv(result))
    else:
        table = Table(*result.columns)
        for row in result.rows:
            table.add_row(*(cell_text(v) for v in row))
        out.print(table)
        out.print(f"{len(result.rows)} row(s)")


@app.command()
def search(
    text: Annotated[str, typer.Argument(help="Words that must all appear in the caption")],
    limit: Annotated[int, typer.Option("--limit", "-n")] = 20,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Full-text search over captions."""
    from pipeline.db import ensure_schema, get_engine
    from pipeline.search import search_captions

    ensure_schema()
    try:
        hits = search_captions(get_engine(), text, limit)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if as_json:
        sys.stdout.write(json.dumps([h.__dict__ for h in hits], ensure_ascii=False) + "\n")
        return
    table = Table("photo", "caption")
    for hit in hits:
        table.add_row(hit.path, hit.caption)
    out.print(table if hits else f"no caption matches {text!r}")


@app.command("sample-album")
def sample_album(
    folder: Annotated[Path, typer.Argument(help="Where to write the album")],
    references: Annotated[Optional[Path], typer.Option("--references", help="Where to write the two reference photos")] = None,
) -> None:
    """Build a small album from public-domain photos that ship in packages (Eileen Collins, Grace Hopper)."""
    from pipeline.sample import build_sample_album

    refs = build_sample_album(folder, references or folder.parent / (folder.name + "-references"))
    for name, path in refs.items():  # machine-readable: NAME<TAB>REFERENCE per line
        sys.stdout.write(f"{name}\t{path}\n")


def main() -> None:
    """Console-script entry point: user errors print one clear line, exit code 1."""
    from pipeline.broker import BrokerError
    from pipeline.people import PeopleError
    from pipeline.runner import RunError

    from pipeline.photos import PhotoError
    from pipeline.plvm.errors import PlvmError

    known: tuple[type[BaseException], ...] = (UserError, PeopleError, RunError, BrokerError, PlvmError, PhotoError)
    try:
        app()
    except known as exc:
        err.print(f"[red]error:[/] {exc}")
        sys.exit(1)


from pipeline import cli_eval, cli_models, cli_synth, cli_train  # noqa: E402,F401  (register eval, models, ask, synth, train)
