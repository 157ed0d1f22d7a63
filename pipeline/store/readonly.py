"""``pipeline sql``: run a query on a read-only connection and format the rows."""

from __future__ import annotations

import base64
import csv
import io
import json
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from pipeline.errors import PipelineError


class ReadOnlyViolation(PipelineError, PermissionError):
    """The query tried to write; the read-only connection refused it."""


class QueryError(PipelineError, ValueError):
    """The database rejected the query (syntax, unknown table, ...)."""


@dataclass
class QueryResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]


_WRITE_HINTS = ("readonly", "read-only", "read only", "query_only", "attempt to write")


def run_readonly(url: str, query: str) -> QueryResult:
    """Execute ``query`` on a connection that the database itself makes read-only."""
    from pipeline.store.db import make_engine

    engine = make_engine(url, read_only=True)
    try:
        with engine.connect() as conn:
            result = conn.execute(text(query))
            if not result.returns_rows:
                conn.rollback()
                return QueryResult([], [])
            columns = list(result.keys())
            rows = [tuple(r) for r in result.all()]
            conn.rollback()
            return QueryResult(columns, rows)
    except DBAPIError as exc:
        message = str(exc.orig) if exc.orig is not None else str(exc)
        if any(h in message.lower() for h in _WRITE_HINTS):
            raise ReadOnlyViolation(
                f"refused: `pipeline sql` is read-only (the database connection refuses writes): {message.strip()}"
            ) from None
        raise QueryError(message.strip()) from None
    finally:
        engine.dispose()


def _plain(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "base64:" + base64.b64encode(bytes(value)).decode()
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def to_json(result: QueryResult) -> str:
    """A JSON array, one object per row keyed by column name (bytes as base64, times ISO 8601)."""
    return json.dumps(
        [{c: _plain(v) for c, v in zip(result.columns, row, strict=True)} for row in result.rows],
        ensure_ascii=False,
        indent=1,
    )


def to_csv(result: QueryResult) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(result.columns)
    for row in result.rows:
        writer.writerow([_plain(v) for v in row])
    return out.getvalue()


def cell_text(value: Any) -> str:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"<{len(bytes(value))} bytes>"
    return "" if value is None else str(_plain(value))
