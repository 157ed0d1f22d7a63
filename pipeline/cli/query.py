"""``pipeline sql`` and ``pipeline search``: reading the results."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.table import Table

from pipeline.cli.app import UserError, app, out, settings


@app.command()
def sql(
    query: Annotated[str, typer.Argument(help="One SQL statement; the connection is read-only")],
    as_json: Annotated[bool, typer.Option("--json", help="JSON array of objects")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="CSV with a header row")] = False,
) -> None:
    """Run a read-only SQL query.

    Tables: people, photos, faces, captions, answers; views: photo_people, photo_captions.
    """
    from pipeline.store.readonly import QueryError, ReadOnlyViolation, cell_text, run_readonly, to_csv, to_json

    if as_json and as_csv:
        raise typer.BadParameter("choose one of --json and --csv")
    if not query.strip():
        raise typer.BadParameter("the query is empty; give one SQL statement, e.g. 'SELECT * FROM photo_people'")
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
    from pipeline.store.db import ensure_schema, get_engine
    from pipeline.store.search import search_captions

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
