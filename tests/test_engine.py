"""The engine's pool without pre-ping: a dropped connection costs one unit of work, no more."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from llm_gateway.db.engine import Database, make_engine
from tests.conftest import _pg_admin


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

        with pytest.raises(DBAPIError) as failed:
            await backend_pid(db)
        after = [await backend_pid(db) for _ in range(3)]
    finally:
        await db.dispose()

    assert failed.value.connection_invalidated
    assert not pooled & set(after)  # the whole pool was replaced, not one connection
