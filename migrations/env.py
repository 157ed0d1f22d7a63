"""Alembic environment: the URL comes from the caller's Config or from pipeline Settings."""

from alembic import context
from sqlalchemy import engine_from_config
from sqlalchemy.pool import NullPool
from sqlalchemy.schema import SchemaItem

from pipeline.store import models  # noqa: F401  (registers the tables)
from pipeline.store.models import metadata

config = context.config


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if url:
        return url
    from pipeline.config import get_settings

    return get_settings().db_url


def _include_object(
    obj: SchemaItem, name: str | None, type_: str, reflected: bool, compare_to: SchemaItem | None
) -> bool:
    # FTS shadow tables and views are created by hand in the migrations.
    if type_ == "table" and name and (name.startswith("captions_fts") or name.startswith("photo_")):
        return False
    if type_ == "column" and name == "text_tsv":
        return False
    if type_ == "index" and name == "ix_captions_text_tsv":
        return False
    return True


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    section = {"sqlalchemy.url": _url()}
    connectable = engine_from_config(section, prefix="sqlalchemy.", poolclass=NullPool)
    with connectable.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            render_as_batch=True,
            compare_type=True,
            include_object=_include_object,
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
