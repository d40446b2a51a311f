"""Per-user limits on sending: a clear RATE_LIMITED error, nothing saved, others unaffected."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select

from llm_gateway.db.models import Message
from llm_gateway.errors import RateLimited
from llm_gateway.services.money.rate_limit import RateLimiter
from llm_gateway.settings import Settings
from tests.chat_support import finished, new_dialog, send
from tests.conftest import make_settings
from tests.factories import database_of
from tests.support import GraphQLClient


@pytest.fixture(params=["in-process", "redis"])
def settings(request: pytest.FixtureRequest, database_url: str) -> Settings:
    limits: dict[str, Any] = {"rate_limit_requests": 3, "rate_limit_window": 3600}
    if request.param == "redis":
        # Windows are per user: each test below counts for a user id no earlier run used.
        redis_url = request.getfixturevalue("redis_available")
        return make_settings(database_url, redis_url=redis_url, **limits)
    return make_settings(database_url, **limits)


async def test_the_fourth_send_in_a_window_is_refused(
    gql: GraphQLClient, app: Any, settings: Settings
) -> None:
    # Redis keeps counters across runs for the window: a user id no earlier run used.
    user = 10**6 + uuid.uuid4().int % 10**9
    dialog_id = await new_dialog(gql, user=user)
    for i in range(3):
        sent = (await send(gql, dialog_id, f"m{i}", user=user)).ok()["sendMessage"]
        await finished(app, sent["assistantMessage"]["id"])
    refused = await send(gql, dialog_id, "one too many", user=user)
    assert refused.codes == ["RATE_LIMITED"]
    details = refused.errors[0]["extensions"]
    assert details["limit"] == 3
    assert 0 < details["retryAfter"] <= 3600
    async with database_of(app).read() as session:
        stored = await session.scalar(
            select(func.count()).select_from(Message).where(Message.content == "one too many")
        )
    assert stored == 0
    other = await new_dialog(gql, user=user + 1)
    assert (await send(gql, other, "hello", user=user + 1)).errors == []


@pytest.mark.parametrize("shared", [False, True], ids=["in-process", "redis"])
async def test_a_window_opens_at_the_users_first_call(
    shared: bool, request: pytest.FixtureRequest
) -> None:
    # A window aligned to the clock would reset between two calls a moment apart whenever a
    # boundary fell between them, and would tell the refused caller less than a window.
    redis = Redis.from_url(request.getfixturevalue("redis_available")) if shared else None
    try:
        limiter = RateLimiter(1, 3600, redis)
        user = 10**6 + uuid.uuid4().int % 10**9
        await limiter.hit(user)
        with pytest.raises(RateLimited) as refused:
            await limiter.hit(user)
        assert refused.value.details["retryAfter"] == 3600
        await limiter.hit(user + 1)  # another user's window is their own

        limiter.configure(1, 1)
        await limiter.hit(user + 2)
        with pytest.raises(RateLimited):
            await limiter.hit(user + 2)
        await asyncio.sleep(1.05)
        await limiter.hit(user + 2)  # the window closed a second after it opened
    finally:
        if redis is not None:
            await redis.aclose()
