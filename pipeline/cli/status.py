"""``pipeline config``, ``status`` and ``retry``: what the pipeline is set to and doing, and trying
failed photos again."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from pipeline.cli.app import app, open_session, out, report_requeued, settings
from pipeline.config import redact_url


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


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json")] = False,
    failures: Annotated[int, typer.Option("--failures", help="How many recent failures to show")] = 10,
) -> None:
    """Photos per state, queue length, and the last failures with their reasons."""
    from sqlmodel import col, select

    from pipeline.broker.client import queue_length, resolve_broker_url
    from pipeline.people.registry import enrolment_version
    from pipeline.service.progress import state_counts
    from pipeline.store.models import Photo
    from pipeline.store.states import PhotoState

    s = settings()
    broker = resolve_broker_url(s)
    with open_session() as session:
        counts = state_counts(session)
        failed = session.exec(
            select(Photo)
            .where(col(Photo.state) == PhotoState.FAILED.value)
            .order_by(col(Photo.done_at).desc())
            .limit(failures)
        ).all()
        version = enrolment_version(session)
    data = {
        "states": counts,
        "queue_length": queue_length(broker) if broker else None,
        "broker": redact_url(broker) if broker else None,
        "enrolment_version": version,
        "profile": s.profile,
        "last_failures": [{"path": p.path, "error": p.error, "attempts": p.attempts} for p in failed],
    }
    if as_json:
        out.print_json(json.dumps(data))
        return
    out.print("photos: " + "  ".join(f"{k} {v}" for k, v in counts.items()))
    out.print(
        f"queue: {data['queue_length'] if broker else 'no broker running'}   "
        f"enrolment version: {version}   profile: {s.profile}"
    )
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
    from pipeline.ingest.ingestor import norm_path
    from pipeline.ingest.retry import retry_photos

    with open_session() as session:
        ids = retry_photos(session) if what == "failed" else retry_photos(session, path=norm_path(Path(what)))
    report_requeued(ids)
