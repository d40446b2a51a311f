"""Engine, session factory, and the ``Database`` handle that opens units of work."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from llm_gateway.settings import DbPooler

logger = logging.getLogger("llm_gateway.db")

Effect = Callable[[], Awaitable[object]]
"""Something a unit of work does once its change is committed (a broker notice)."""

_EFFECTS = "llm_gateway.after_commit"


def after_commit(session: AsyncSession, effect: Effect) -> None:
    """Await ``effect`` once this session's transaction has committed, never before.

    For what must not happen for a change that is rolled back, and must not hold the
    connection: telling other instances and subscribers about the change. Effects run in
    the order registered, after ``Database.transaction()`` committed and closed the
    session; on a rollback they are dropped. A session from ``Database.read()`` never
    commits, so it never runs them. An effect that fails is logged: the change it follows
    is committed already, so it must not fail the request.
    """
    session.info.setdefault(_EFFECTS, []).append(effect)


async def _run_effects(effects: list[Effect]) -> None:
    for effect in effects:
        try:
            await effect()
        except Exception:
            logger.exception("an effect after commit failed: %r", effect)


def pooler_connect_args(pooler: DbPooler) -> dict[str, Any]:
    """asyncpg's arguments for a connection through ``pooler``.

    Behind PgBouncer in transaction mode, consecutive transactions of one connection may
    run on different server connections, so a statement prepared in one is unknown in
    the next, and asyncpg's per-connection names (``__asyncpg_stmt_1__``) collide with
    another client's on a shared server connection. So: no statement cache, neither
    asyncpg's nor SQLAlchemy's, and every statement SQLAlchemy prepares gets a name no
    one else uses (SQLAlchemy's asyncpg dialect docs, "Prepared Statement Name with
    PGBouncer").
    """
    if pooler == "none":
        return {}
    return {
        "statement_cache_size": 0,
        "prepared_statement_cache_size": 0,
        "prepared_statement_name_func": _unique_statement_name,
    }


def _unique_statement_name() -> str:
    return f"__asyncpg_{uuid.uuid4().hex}__"


def make_engine(
    url: URL | str, *, pool_size: int = 10, max_overflow: int = 10, pooler: DbPooler = "none"
) -> AsyncEngine:
    """An engine tuned for the backend: pooled PostgreSQL, or SQLite in WAL mode.

    No ``pool_pre_ping``: on PostgreSQL it costs a round trip (BEGIN, an empty statement,
    ROLLBACK) on every checkout, about seven per chat, to guard against a rare event.
    Instead a checkout looks, without any I/O, whether asyncpg already saw the server close
    the socket (``pg_terminate_backend``, a restart): such a connection is replaced before
    the unit of work starts, so it costs no request. A connection that dies silently is
    still found by the unit of work that uses it; SQLAlchemy then invalidates the whole
    pool, so later checkouts connect afresh (``tests/platform/test_engine.py``). SQLite has no
    server that could drop a connection: a ping there would guard against nothing.

    ``pooler="pgbouncer"`` (PostgreSQL only) turns prepared statement caches off (see
    ``pooler_connect_args``); the engine keeps its own small pool of client connections.
    """
    kwargs: dict[str, Any] = {}
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        kwargs["connect_args"] = {"timeout": 30}
    else:
        kwargs.update(pool_size=pool_size, max_overflow=max_overflow)
        if connect_args := pooler_connect_args(pooler):
            kwargs["connect_args"] = connect_args
    engine = create_async_engine(url, **kwargs)
    if backend == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin_immediate)
    else:
        event.listen(engine.sync_engine.pool, "checkout", _discard_closed)
    return engine


def _discard_closed(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    # Raising DisconnectionError makes the pool drop this connection and check out another.
    driver = getattr(dbapi_connection, "driver_connection", None)
    is_closed = getattr(driver, "is_closed", None)
    if is_closed is not None and is_closed():
        raise DisconnectionError("the server closed this connection")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy own BEGIN so every transaction can take the write lock up front.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


READ_ONLY = "llm_gateway_read_only"


def _sqlite_begin_immediate(connection: Any) -> None:
    # A writing transaction takes the write lock up front (BEGIN IMMEDIATE), so
    # concurrent writers queue on busy_timeout instead of one failing with
    # "database is locked" when it upgrades from reading; reads stay deferred.
    if connection.get_execution_options().get(READ_ONLY):
        connection.exec_driver_sql("BEGIN")
    else:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


class Database:
    """Owns the engine; hands out one session per unit of work, never shared."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.sessions = async_sessionmaker(engine, expire_on_commit=False, autoflush=False)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session in a transaction that commits when the block ends, else rolls back.

        After a commit, the effects registered with ``after_commit`` run (the connection
        is back in the pool by then); after a rollback they are dropped.
        """
        async with self.sessions() as session:
            async with session.begin():
                yield session
            effects: list[Effect] = session.info.pop(_EFFECTS, [])
        await _run_effects(effects)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session for reads; whatever it began is rolled back at the end."""
        async with self.sessions() as session:
            await session.connection(execution_options={READ_ONLY: True})
            yield session

    async def ping(self) -> None:
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()
