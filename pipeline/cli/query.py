"""``pipeline sql`` and ``pipeline search``: reading the results."""

from __future__ import annotations

import csv
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
    One statement per call, limited to sql_timeout seconds; Ctrl-C stops it. On PostgreSQL it
    connects as the read-only role of `pipeline db readonly-role`.
    """
    from pipeline.store.readonly import cell_text, run_readonly, to_csv, to_json

    if as_json and as_csv:
        raise typer.BadParameter("choose one of --json and --csv")
    if not query.strip():
        raise typer.BadParameter("the query is empty; give one SQL statement, e.g. 'SELECT * FROM photo_people'")
    try:
        result = run_readonly(settings(), query)
    except FileNotFoundError as exc:
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
    text: Annotated[str, typer.Argument(help="Words that must all appear in the caption; `Gra*` is a prefix")],
    order: Annotated[str, typer.Option("--order", help="newest (photo time, newest first) or relevance")] = "newest",
    limit: Annotated[int, typer.Option("--limit", "-n", help="Hits per page")] = 20,
    page: Annotated[int, typer.Option("--page", help="Page number, from 1")] = 1,
    offset: Annotated[int | None, typer.Option("--offset", help="Hits to skip (instead of --page)")] = None,
    after: Annotated[
        str | None,
        typer.Option("--after", help="Continue after this hit: the cursor a page ends with (deep pages cost one page)"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON array of objects")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="CSV with a header row")] = False,
) -> None:
    """Full-text search over captions, newest photos first; full paths."""
    from pipeline.store.db import ensure_schema, get_engine
    from pipeline.store.search import ORDERS, search_captions

    if as_json and as_csv:
        raise typer.BadParameter("choose one of --json and --csv")
    if order not in ORDERS:
        raise typer.BadParameter(f"choose one of {', '.join(ORDERS)}", param_hint="--order")
    if page < 1:
        raise typer.BadParameter("pages count from 1", param_hint="--page")
    if offset is not None and page != 1:
        raise typer.BadParameter("give --page or --offset, not both", param_hint="--offset")
    if after is not None and page != 1:
        raise typer.BadParameter("give --page or --after, not both", param_hint="--after")
    ensure_schema()
    start = offset if offset is not None else (page - 1) * limit
    hits = search_captions(get_engine(), text, limit, order=order, offset=start, after=after)
    rows = [hit.as_dict() for hit in hits]
    if as_json:
        sys.stdout.write(json.dumps(rows, ensure_ascii=False) + "\n")
    elif as_csv:
        writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]) if rows else ["photo_id", "path", "caption"])
        writer.writeheader()
        writer.writerows(rows)
    elif not hits:
        out.print(f"no caption matches {text!r}" + (f" on page {page}" if start else ""))
    else:
        table = Table("taken", "photo", "caption")
        for hit in hits:
            table.add_row(hit.taken_at.strftime("%Y-%m-%d %H:%M") if hit.taken_at else "", hit.path, hit.caption)
        table.columns[1].overflow = "fold"
        out.print(table)
        more = f"; more with --after {hits[-1].cursor}" if len(hits) == limit else ""
        if after is None:
            more += f" (or --offset {start + limit})" if more else ""
            out.print(f"hits {start + 1}-{start + len(hits)}, {order} first{more}")
        else:
            out.print(f"{len(hits)} hits after {after}, {order} first{more}")
