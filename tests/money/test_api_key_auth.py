"""Who an API key acts for: fresh keys pass; unknown, revoked and expired ones do not; one
indexed read, then the cache; revocation on one instance is seen by another within a
second; the time of last use is written in batches, not per request."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from llm_gateway.app import create_app
from llm_gateway.db.base import utcnow
from llm_gateway.db.models import ApiKey
from llm_gateway.errors import Unauthenticated
from llm_gateway.services.money.api_keys import (
    EXPIRED_KEY,
    REVOKED_KEY,
    UNKNOWN_KEY,
    ApiKeyAuthenticator,
    ApiKeyPrincipal,
    authenticator,
    is_api_key,
    last_used,
)
from llm_gateway.settings import Settings
from tests.conftest import make_settings
from tests.factories import database_of
from tests.faults import until
from tests.money.test_api_keys import REVOKE, USER, create_key
from tests.platform.test_query_counts import count_statements
from tests.support import GraphQLClient

LONG_CACHE = 3600.0  # only a revocation notice can explain a quick refusal
FOLLOW_SECONDS = 1.0  # what the issue promises


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url, api_key_cache_seconds=LONG_CACHE)


def reads(statements: list[str]) -> list[str]:
    return [s for s in statements if s.lstrip().upper().startswith("SELECT")]


def updates(statements: list[str]) -> list[str]:
    return [s for s in statements if s.lstrip().upper().startswith("UPDATE")]


async def refused(keys: ApiKeyAuthenticator, raw: str) -> str:
    with pytest.raises(Unauthenticated) as caught:
        await keys.authenticate(raw)
    return caught.value.message


async def test_a_fresh_key_acts_as_its_user_with_its_restrictions(
    gql: GraphQLClient, app: Any
) -> None:
    created = await create_key(gql, models=["mock"], dailyTokenLimit=100)
    principal = await app.state.services.api_keys.authenticate(created["key"])
    assert principal == ApiKeyPrincipal(
        key_id=uuid.UUID(created["apiKey"]["id"]),
        user_id=USER,
        name="laptop",
        models=("mock",),
        daily_token_limit=100,
        expires_at=None,
    )
    assert principal.allows("mock")
    assert not principal.allows("gpt-4-turbo")
    assert is_api_key(created["key"])
    assert not is_api_key("eyJhbGciOiJIUzI1NiJ9.e30.sig")


async def test_unknown_and_revoked_keys_are_refused(gql: GraphQLClient, app: Any) -> None:
    keys = app.state.services.api_keys
    assert await refused(keys, "sk-lg-" + "A" * 43) == UNKNOWN_KEY
    assert await refused(keys, "not-a-key") == UNKNOWN_KEY
    assert await refused(keys, "sk-lg-" + "A" * 500) == UNKNOWN_KEY

    created = await create_key(gql)
    await keys.authenticate(created["key"])  # cached now, for an hour
    (await gql(REVOKE, {"id": created["apiKey"]["id"]}, user=USER)).ok()
    assert await refused(keys, created["key"]) == REVOKED_KEY  # at once on this instance


async def test_expiry_is_checked_on_every_call_even_when_cached(
    gql: GraphQLClient, app: Any
) -> None:
    expires = utcnow() + dt.timedelta(hours=1)
    created = await create_key(gql, expiresAt=expires.isoformat())
    services = app.state.services
    now = [utcnow()]
    keys = ApiKeyAuthenticator(
        services.db, services.broker, cache_seconds=LONG_CACHE, clock=lambda: now[0]
    )
    assert (await keys.authenticate(created["key"])).expires_at == expires
    now[0] = expires
    with count_statements(app) as statements:
        assert await refused(keys, created["key"]) == EXPIRED_KEY
    assert statements == []  # the cached entry, checked again


async def test_one_indexed_read_then_the_cache_found_or_not(gql: GraphQLClient, app: Any) -> None:
    created = await create_key(gql)
    keys = app.state.services.api_keys
    unknown = "sk-lg-" + "B" * 43
    with count_statements(app) as statements:
        await asyncio.gather(*(keys.authenticate(created["key"]) for _ in range(10)))
        for _ in range(3):
            await keys.authenticate(created["key"])
            await refused(keys, unknown)
    assert len(reads(statements)) == 2, statements  # one per key, the unknown one included
    assert all("key_hash" in s for s in reads(statements))
    assert updates(statements) == []


async def test_the_cache_is_bounded(app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(authenticator, "MAX_CACHED_KEYS", 3)
    keys = app.state.services.api_keys
    for n in range(5):
        await refused(keys, f"sk-lg-{n:043d}")
    assert keys.cached == 3


async def test_last_used_is_written_by_the_flush_not_per_request(
    gql: GraphQLClient, app: Any
) -> None:
    created = await create_key(gql)
    keys = app.state.services.api_keys
    with count_statements(app) as statements:
        for _ in range(5):
            await keys.authenticate(created["key"])
    assert updates(statements) == []
    assert (await gql("{ apiKeys { lastUsedAt } }", user=USER)).ok()["apiKeys"] == [
        {"lastUsedAt": None}
    ]

    with count_statements(app) as flushed:
        await keys.last_used.flush()
    assert len(updates(flushed)) == 1, flushed
    listed = (await gql("{ apiKeys { lastUsedAt } }", user=USER)).ok()["apiKeys"]
    assert listed[0]["lastUsedAt"] is not None
    assert keys.last_used.pending == 0


async def test_last_used_only_moves_forward(gql: GraphQLClient, app: Any) -> None:
    created = await create_key(gql)
    key_id = uuid.UUID(created["apiKey"]["id"])
    later = utcnow()
    db = database_of(app)
    for moment in (later, later - dt.timedelta(minutes=5)):  # an instance that lags
        async with db.transaction() as session:
            await last_used.write_last_used(session, {key_id: moment})
    async with db.read() as session:
        row = await session.get(ApiKey, key_id)
    assert row is not None
    assert row.last_used_at == later


async def test_last_use_is_written_at_shutdown(database_url: str) -> None:
    settings = make_settings(database_url)
    first = create_app(settings)
    async with LifespanManager(first), _client(first) as http:
        created = await create_key(GraphQLClient(http))
        await first.state.services.api_keys.authenticate(created["key"])
    second = create_app(settings)
    async with LifespanManager(second), _client(second) as http:
        listed = await GraphQLClient(http)("{ apiKeys { lastUsedAt } }", user=USER)
    assert listed.ok()["apiKeys"][0]["lastUsedAt"] is not None


@pytest.fixture
async def two_instances(database_url: str, redis_available: str) -> AsyncIterator[list[Any]]:
    """Two gateways on one database and one Redis, each caching keys for an hour."""
    settings = make_settings(
        database_url, redis_url=redis_available, api_key_cache_seconds=LONG_CACHE
    )
    first, second = create_app(settings), create_app(settings)
    async with LifespanManager(first), LifespanManager(second):
        yield [first, second]


def _client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw.test")


async def test_a_revocation_reaches_the_other_instance_within_a_second(
    two_instances: list[Any],
) -> None:
    a, b = two_instances
    on_b: ApiKeyAuthenticator = b.state.services.api_keys

    async def b_watches() -> bool:
        return on_b.watching

    await until(b_watches, within=5, what="B follows revocations")
    async with _client(a) as http:
        gql = GraphQLClient(http)
        created = await create_key(gql)
        assert (await on_b.authenticate(created["key"])).user_id == USER  # cached on B
        (await gql(REVOKE, {"id": created["apiKey"]["id"]}, user=USER)).ok()

    async def b_refuses() -> bool:
        try:
            await on_b.authenticate(created["key"])
        except Unauthenticated as exc:
            return exc.message == REVOKED_KEY
        return False

    await until(b_refuses, within=FOLLOW_SECONDS, what="B refuses the revoked key")
