"""The PostgreSQL role that ``pipeline sql`` (and the web app's reads) connect as.

The wall is the server's privileges, not the transaction mode: a session can always say ``BEGIN
READ WRITE`` or ``SET transaction_read_only = off``, so the role must simply own nothing and hold
nothing but ``SELECT``. ``create_reader_role`` (``pipeline db readonly-role``, run once by the
database owner) makes a LOGIN role with a generated password that

- is not superuser, cannot create roles or databases, replicate or bypass row security;
- is a member of no role (so not of ``pg_read_server_files``, ``pg_write_server_files`` or
  ``pg_execute_server_program``: no ``pg_read_file``, no ``COPY ... TO PROGRAM``);
- has ``CONNECT`` on the database, ``USAGE`` on the schema and ``SELECT`` on its tables and views
  (also on tables the owner creates later, through default privileges), nothing else;
- starts every transaction read-only and every statement with a time limit (role settings).

``check_reader`` asks the server whether the role a connection uses could write anything, and
refuses it if so (a mis-set ``PIPELINE_SQL_DATABASE_URL`` pointing at the owner, say).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection, make_url

from pipeline.errors import PipelineError
from pipeline.private_files import write_private

DEFAULT_READER = "pipeline_reader"
SERVER_ROLES = ("pg_read_server_files", "pg_write_server_files", "pg_execute_server_program")


class ReaderRoleError(PipelineError, PermissionError):
    """The read-only role is missing, or could write; the message says how to set it up."""


@dataclass
class ReaderRole:
    name: str
    url: str  # the URL to connect as this role (with its password)
    url_file: Path


def reader_url_file(data_dir: Path) -> Path:
    """Where ``pipeline db readonly-role`` stores the reader's URL (mode 0600)."""
    return data_dir / "sql-reader.url"


def _ident(conn: Connection, name: str) -> str:
    return str(conn.execute(text("SELECT quote_ident(:n)"), {"n": name}).scalar_one())


def _literal(conn: Connection, value: str) -> str:
    return str(conn.execute(text("SELECT quote_literal(:v)"), {"v": value}).scalar_one())


def create_reader_role(conn: Connection, owner_url: str, data_dir: Path, name: str = DEFAULT_READER) -> ReaderRole:
    """Create or refresh the read-only role (new password) in ``conn``'s database; store its URL 0600.

    ``conn`` must be the database owner's connection with CREATEROLE (or superuser); the caller
    commits. Returns the role and where its URL was written.
    """
    role = _ident(conn, name)
    password = secrets.token_urlsafe(24)
    exists = conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :n"), {"n": name}).first() is not None
    attrs = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS"
    verb = "ALTER" if exists else "CREATE"
    conn.execute(text(f"{verb} ROLE {role} WITH {attrs} PASSWORD {_literal(conn, password)}"))
    for (group,) in conn.execute(
        text(
            "SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid "
            "JOIN pg_roles r ON r.oid = m.member WHERE r.rolname = :n"
        ),
        {"n": name},
    ).all():
        conn.execute(text(f"REVOKE {_ident(conn, group)} FROM {role}"))
    database = _ident(conn, str(conn.execute(text("SELECT current_database()")).scalar_one()))
    schema = _ident(conn, str(conn.execute(text("SELECT current_schema()")).scalar_one()))
    for statement in (
        f"ALTER ROLE {role} IN DATABASE {database} SET default_transaction_read_only = on",
        f"REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM {role}",
        f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {schema} FROM {role}",
        f"REVOKE ALL ON ALL FUNCTIONS IN SCHEMA {schema} FROM {role}",
        f"GRANT CONNECT ON DATABASE {database} TO {role}",
        f"GRANT USAGE ON SCHEMA {schema} TO {role}",
        f"GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {role}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT SELECT ON TABLES TO {role}",
    ):
        conn.execute(text(statement))
    if conn.execute(text("SELECT has_schema_privilege(:n, current_schema(), 'CREATE')"), {"n": name}).scalar_one():
        # PostgreSQL < 15 lets PUBLIC create in the public schema; a reader must not.
        conn.execute(text(f"REVOKE CREATE ON SCHEMA {schema} FROM PUBLIC"))
    url = make_url(owner_url).set(username=name, password=password)
    path = reader_url_file(data_dir)
    write_private(path, url.render_as_string(hide_password=False))
    return ReaderRole(name=name, url=url.render_as_string(hide_password=True), url_file=path)


def write_privileges(dbapi_conn: Any) -> list[str]:
    """What the (psycopg) connection's role could change, as the server reports it (empty: nothing)."""
    found: list[str] = []
    with dbapi_conn.cursor() as cur:
        cur.execute(
            "SELECT rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, rolreplication "
            "FROM pg_roles WHERE rolname = current_user"
        )
        flags = cur.fetchone()
        labels = ("superuser", "createrole", "createdb", "bypassrls", "replication")
        found.extend(label for flag, label in zip(flags, labels, strict=True) if flag)
        for server_role in SERVER_ROLES:
            cur.execute("SELECT pg_has_role(current_user, %s, 'USAGE')", (server_role,))
            if cur.fetchone()[0]:
                found.append(f"member of {server_role}")
        cur.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_temp%%' "
            "AND n.nspname NOT LIKE 'pg_toast%%' AND c.relkind IN ('r', 'v', 'm', 'p', 'S') "
            "AND (pg_has_role(current_user, c.relowner, 'USAGE') "
            "OR has_table_privilege(current_user, c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE')) LIMIT 5",
            (),
        )
        found.extend(f"can write {name}" for (name,) in cur.fetchall())
        cur.execute("SELECT has_schema_privilege(current_user, current_schema(), 'CREATE')")
        if cur.fetchone()[0]:
            found.append("can create tables")
        cur.execute("SELECT current_user")
        user = cur.fetchone()[0]
    return [f"{user}: {p}" for p in found]


def check_reader(dbapi_conn: Any) -> None:
    """Raise ReaderRoleError unless the server says this (psycopg) connection's role can only read."""
    problems = write_privileges(dbapi_conn)
    if problems:
        raise ReaderRoleError(
            f"the SQL reader role is not read-only ({'; '.join(problems)}); "
            "create a read-only role with `pipeline db readonly-role` (as the database owner) "
            "and unset PIPELINE_SQL_DATABASE_URL, or point it at that role"
        )


def session_options(timeout_s: float) -> dict[str, Any]:
    """psycopg connect arguments: every transaction read-only, statements limited to ``timeout_s``."""
    return {"options": f"-c default_transaction_read_only=on -c statement_timeout={int(timeout_s * 1000)}"}
