"""The engine's pool without pre-ping: connections the server dropped cost no request."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from sqlalchemy import text

from llm_gateway.db.engine import Database, make_engine
from tests.conftest import _pg_admin, _pg_dsn


async def backend_pid(db: Database) -> int:
    async with db.read() as session:
        pid: int = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
    return pid


@pytest.mark.postgres_only
async def test_the_pool_recovers_after_the_server_drops_its_connections(
    database_url: str,
) -> None:
    db = Database(make_engine(database_url, pool_size=3, max_overflow=0))
    try:
        pooled = set(await asyncio.gather(*(backend_pid(db) for _ in range(3))))
        await _pg_admin(*(f"SELECT pg_terminate_backend({pid})" for pid in pooled))

        await _until_gone(pooled)
        after = [await backend_pid(db) for _ in range(3)]  # none of them fails
    finally:
        await db.dispose()

    assert not pooled & set(after)  # every dropped connection was replaced


async def _until_gone(pids: set[int]) -> None:
    """Until the server has ended these backends (and the client had a turn to see it)."""
    for _ in range(500):
        connection = await asyncpg.connect(_pg_dsn("postgres"))
        try:
            alive = await connection.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1::int[])", list(pids)
            )
        finally:
            await connection.close()
        if not alive:
            await asyncio.sleep(0)
            return
    raise AssertionError(f"backends {pids} were not terminated")
