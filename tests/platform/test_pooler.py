"""``DB_POOLER=pgbouncer``: no prepared statement cache, and a chat works the same.

PgBouncer itself is not installed where these tests run: they check what the gateway
controls, on the engine the app really builds, against PostgreSQL directly. Under
transaction pooling any statement name left on a server connection would be a collision
waiting for another client, and any statement expected to survive its transaction would
be missing on the next server connection; both show up here as rows of
``pg_prepared_statements`` outliving the statement that made them.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from llm_gateway.db import migrate
from llm_gateway.db.engine import make_engine
from llm_gateway.settings import ConfigError, Settings, load_settings
from tests.chat_support import assert_exact, finished, new_dialog, send
from tests.conftest import make_settings
from tests.factories import database_of
from tests.fakes import DEFAULT_OPENAI_KEY, OpenAIFake, Scenario, fake_openai
from tests.support import GraphQLClient

UNIQUE_NAME = re.compile(r"__asyncpg_[0-9a-f]{32}__")
REPLY = "Transaction pooling changes nothing for the user."


async def prepared_after_work(engine: AsyncEngine) -> list[str]:
    """Statements still prepared on a connection after it ran a few, in both ways the
    code runs them (SQLAlchemy's prepare-then-execute, asyncpg's own ``fetch``), listed by
    the last statement itself."""
    async with engine.connect() as connection:
        for _ in range(3):
            await connection.execute(text("SELECT count(*) FROM models"))
        raw = await connection.get_raw_connection()
        driver: Any = raw.driver_connection
        for _ in range(2):
            await driver.fetchval("SELECT 1")
        rows = await connection.execute(text("SELECT name FROM pg_prepared_statements"))
        return [str(name) for (name,) in rows]


@pytest.mark.postgres_only
async def test_through_a_pooler_the_engine_keeps_no_prepared_statements(
    database_url: str,
) -> None:
    direct = make_engine(database_url, pool_size=1, max_overflow=0)
    pooled = make_engine(database_url, pool_size=1, max_overflow=0, pooler="pgbouncer")
    try:
        cached = await prepared_after_work(direct)
        uncached = await prepared_after_work(pooled)
        connection = await pooled.connect()
        try:
            raw = await connection.get_raw_connection()
            driver: Any = raw.driver_connection
            statement_cache_size = driver._config.statement_cache_size
        finally:
            await connection.close()
    finally:
        await direct.dispose()
        await pooled.dispose()

    assert len(cached) >= 3  # the check can fail: without a pooler both caches keep theirs
    assert any(name.startswith("__asyncpg_stmt_") for name in cached)
    assert statement_cache_size == 0  # asyncpg's cache is off
    # Only the listing itself, under a name no other client uses: each statement before it
    # was closed on the server connection that prepared it, in its own transaction.
    assert len(uncached) == 1
    assert UNIQUE_NAME.fullmatch(uncached[0]), uncached


@pytest.mark.postgres_only
def test_migrations_run_through_a_pooler(database_url: str) -> None:
    migrate.downgrade(database_url, "base")
    migrate.upgrade(database_url, pooler="pgbouncer")  # ``llm-gateway migrate`` passes it

    async def revision() -> str | None:
        engine = make_engine(database_url, pooler="pgbouncer")
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(migrate.current_revision)
        finally:
            await engine.dispose()

    assert asyncio.run(revision()) == migrate.head_revision()


def test_a_pooler_is_for_postgresql_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DATABASE_URL", "SQL_USER", "SQL_NAME", "DB_POOLER"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings(
        _env_file=None,
        django_secret_key="x" * 40,
        sqlite_path=str(tmp_path / "gw.sqlite3"),
        db_pooler="PgBouncer",
    )
    assert settings.db_pooler == "pgbouncer"  # names are not case-sensitive
    with pytest.raises(ConfigError, match="DB_POOLER"):
        settings.check_runnable()
    with pytest.raises(ConfigError, match="DB_POOLER"):
        load_settings(_env_file=None, db_pooler="pgpool")


# --- a chat, through the engine the app builds with DB_POOLER=pgbouncer ----------------------


@pytest.fixture
async def openai() -> AsyncIterator[OpenAIFake]:
    async with fake_openai() as fake:
        yield fake


@pytest.fixture
def settings(database_url: str, openai: OpenAIFake) -> Settings:
    return make_settings(
        database_url,
        db_pooler="pgbouncer",
        openai_api_key=DEFAULT_OPENAI_KEY,
        openai_base_url=openai.base_url,
        generation_flush_seconds=0.01,
    )


@pytest.mark.postgres_only
async def test_a_chat_through_a_pooler_is_answered_and_settled_exactly(
    gql: GraphQLClient, app: Any, openai: OpenAIFake
) -> None:
    dialog_id = await new_dialog(gql, model="gpt-4-turbo")
    for question in ("First question", "Second question"):
        openai.script(Scenario(text=REPLY, chunks=6, prompt_tokens=30, completion_tokens=12))
        sent = (await send(gql, dialog_id, question)).ok()["sendMessage"]
        answer = await finished(app, sent["assistantMessage"]["id"])
        assert (answer.status, answer.content, answer.charged_tokens) == ("complete", REPLY, 42)
    state = await assert_exact(app)
    assert [row.amount for row in state.usage_rows] == [-42, -42]
    # The app's own engine is the one without caches.
    assert len(await prepared_after_work(database_of(app).engine)) == 1
