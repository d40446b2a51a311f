"""Alembic environment: async engine, URL from Settings unless the caller passes one.

``llm_gateway.db.migrate`` passes either a URL (``config.attributes["url"]``) or an open
connection (``config.attributes["connection"]``) so tests can migrate any database.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from alembic import context
from llm_gateway.db import models  # noqa: F401  (fills Base.metadata)
from llm_gateway.db.base import Base, UTCDateTime
from llm_gateway.db.engine import pooler_connect_args
from llm_gateway.db.search_index import is_search_object

config = context.config
target_metadata = Base.metadata


def _render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    # Migrations stay free of application imports: our UTC type is a plain timestamptz.
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    # The full-text search objects (migration 0007) are not in the models: the tsvector
    # column and its GIN index on PostgreSQL, the FTS5 table and its shadow tables on SQLite.
    return not is_search_object(name, type_, parent_names)


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        render_item=_render_item,
        include_name=_include_name,
        compare_type=True,
        compare_server_default=False,
    )


def _run(connection: Connection) -> None:
    _configure(connection)
    with context.begin_transaction():
        context.run_migrations()


async def _run_async(url: str) -> None:
    engine = create_async_engine(url, poolclass=NullPool, connect_args=_connect_args(url))
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


def _url() -> str:
    url = config.attributes.get("url")
    if url:
        return str(url)
    from llm_gateway.settings import load_settings

    return load_settings().database.render_as_string(hide_password=False)


def _connect_args(url: str) -> dict[str, Any]:
    """Through a pooler (``DB_POOLER``), without prepared statement caches, as the server."""
    if url.startswith("sqlite"):
        return {}
    pooler = config.attributes.get("pooler")
    if pooler is None:  # run by alembic's own command, not by llm_gateway.db.migrate
        from llm_gateway.settings import load_settings

        pooler = load_settings().db_pooler
    return pooler_connect_args(pooler)


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
elif (connection := config.attributes.get("connection")) is not None:
    _run(connection)
else:
    asyncio.run(_run_async(_url()))
