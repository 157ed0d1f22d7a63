"""What a read-only SQLite connection may do: an authorizer (an allow-list of read actions) and a
progress handler that stops a statement at its deadline or when the user pressed Ctrl-C.

SQLite asks the authorizer about every table, column, function and PRAGMA while it *prepares* a
statement, so a statement that would write, attach a file (``ATTACH``, ``VACUUM INTO``), change a
PRAGMA or load an extension is refused before it runs, with "not authorized".
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass, field
from typing import Any

# PRAGMAs that only report: without an argument, or with a table/index name as the argument. Any
# other PRAGMA, and any of these given a value (``journal_mode = DELETE``), is denied.
REPORT_PRAGMAS = frozenset(
    {
        "table_list",
        "collation_list",
        "function_list",
        "pragma_list",
        "compile_options",
        "database_list",
        "user_version",
        "schema_version",
        "data_version",  # FTS5 reads it when it opens captions_fts
        "page_count",
        "page_size",
        "freelist_count",
        "encoding",
        "journal_mode",
        "foreign_keys",
    }
)
NAME_PRAGMAS = frozenset({"table_info", "table_xinfo", "index_list", "index_info", "index_xinfo", "foreign_key_list"})
# Functions a reader never needs; load_extension would run native code from a file.
DENIED_FUNCTIONS = frozenset({"load_extension", "fts3_tokenizer", "readfile", "writefile", "edit"})

_ALLOWED_ACTIONS = frozenset({sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_RECURSIVE})
PROGRESS_STEPS = 1000  # virtual-machine instructions between two checks of the deadline and Ctrl-C


def authorize(action: int, arg1: str | None, arg2: str | None, _db: str | None, _trigger: str | None) -> int:
    """The authorizer callback: allow reads, report-only PRAGMAs and ordinary functions; deny the rest."""
    if action in _ALLOWED_ACTIONS:
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_FUNCTION:
        return sqlite3.SQLITE_DENY if (arg2 or "").lower() in DENIED_FUNCTIONS else sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_UPDATE and arg1 == "sqlite_master" and _trigger is None:
        # SQLite itself asks this while it loads the schema for a pragma table (pragma_table_list);
        # a user's UPDATE of the schema table needs writable_schema, a PRAGMA change denied below.
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_PRAGMA:
        name = (arg1 or "").lower()
        allowed = name in NAME_PRAGMAS or (name in REPORT_PRAGMAS and arg2 is None)
        return sqlite3.SQLITE_OK if allowed else sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_DENY


@dataclass
class StatementGuard:
    """Per-connection state of the progress handler: when the running statement must stop, and why.

    ``arm(seconds)`` starts a statement's clock (0 = no limit); ``cancel()`` (safe from a signal
    handler or another thread) stops the running statement at the next check.
    """

    deadline: float | None = None
    timeout_s: float = 0.0
    cancelled: threading.Event = field(default_factory=threading.Event)
    reason: str | None = None

    def arm(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.deadline = time.monotonic() + timeout_s if timeout_s > 0 else None
        self.cancelled.clear()
        self.reason = None

    def cancel(self) -> None:
        self.cancelled.set()

    def check(self) -> int:
        """The progress handler: non-zero stops the statement (sqlite3 raises "interrupted")."""
        if self.cancelled.is_set():
            self.reason = "interrupted"
            return 1
        if self.deadline is not None and time.monotonic() > self.deadline:
            self.reason = "timeout"
            return 1
        return 0


def harden(conn: sqlite3.Connection, guard: StatementGuard) -> None:
    """Make ``conn`` (already opened with ``mode=ro``) read-only by construction.

    Side effects on the connection: busy timeout, ``query_only``, no attached databases allowed,
    the authorizer above, and ``guard.check`` as progress handler.
    """
    conn.execute("PRAGMA query_only = ON")
    conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
    conn.set_authorizer(authorize)
    conn.set_progress_handler(guard.check, PROGRESS_STEPS)


def as_sqlite(dbapi_conn: Any) -> sqlite3.Connection:
    """The plain ``sqlite3.Connection`` behind a pool's DBAPI connection."""
    conn = getattr(dbapi_conn, "driver_connection", dbapi_conn)
    if not isinstance(conn, sqlite3.Connection):
        raise TypeError(f"not a sqlite3 connection: {type(conn).__name__}")
    return conn
