"""A benchmark's own PostgreSQL database and users: made before the timed phases, dropped after.

The database is created on ``TEST_POSTGRES_URL``'s server (default the local one) and
migrated; each user gets a balance and one empty dialog through the services, as the
tests' factories do, and an access token signed with ``SECRET``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import random
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from benchmarks.chat_load import ChatUser
from llm_gateway.auth import mint_access_token
from llm_gateway.db import migrate
from llm_gateway.db.engine import Database, make_engine
from llm_gateway.services.chat import dialogs
from llm_gateway.services.money import balances
from llm_gateway.settings import Settings

SERVER = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
SECRET = "benchmark-secret-" + "x" * 32
MODEL = "gpt-4-turbo"
BALANCE = 10**9
"""Tokens each user holds: GraphQL's Int is 32 bits, so a balance must stay below 2**31."""


async def admin(sql: str) -> Any:
    url = make_url(SERVER).set(drivername="postgresql")
    connection = await asyncpg.connect(url.render_as_string(hide_password=False))
    try:
        return await connection.fetch(sql)
    finally:
        await connection.close()


@contextlib.asynccontextmanager
async def scratch_database() -> AsyncIterator[tuple[str, str]]:
    """A migrated database of its own: (name, URL); dropped afterwards."""
    name = f"llmgw_overhead_{uuid.uuid4().hex[:8]}"
    await admin(f'CREATE DATABASE "{name}"')
    url = make_url(SERVER).set(drivername="postgresql+asyncpg", database=name)
    try:
        await asyncio.to_thread(migrate.upgrade, url)
        yield name, url.render_as_string(hide_password=False)
    finally:
        await admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def make_users(database_url: str, count: int) -> list[ChatUser]:
    """``count`` users, each with a funded balance and one empty dialog on MODEL."""
    base = random.randrange(10**6, 10**12)
    ids = list(range(base, base + count))
    policy = dataclasses.replace(
        balances.MoneyPolicy.from_settings(Settings(_env_file=None)),  # type: ignore[call-arg]
        initial_balance=BALANCE,
    )
    db = Database(make_engine(database_url, pool_size=4, max_overflow=0))
    dialog_ids: dict[int, str] = {}

    async def batch(user_ids: list[int]) -> None:
        async with db.transaction() as session:
            for user_id in user_ids:
                await balances.ensure_account(session, user_id, policy)
                dialog = await dialogs.create_dialog(
                    session, user_id, dialogs.DialogDraft(model=MODEL), max_content=100_000
                )
                dialog_ids[user_id] = str(dialog.id)

    try:
        chunks = [ids[i : i + 100] for i in range(0, len(ids), 100)]
        for group in range(0, len(chunks), 4):
            await asyncio.gather(*(batch(c) for c in chunks[group : group + 4]))
    finally:
        await db.dispose()
    return [ChatUser(u, mint_access_token(SECRET, u), dialog_ids[u]) for u in ids]
