"""Per-user limits on sending: a clear RATE_LIMITED error, nothing saved, others unaffected."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import func, select

from llm_gateway.db.models import Message
from llm_gateway.settings import Settings
from tests.chat_support import finished, new_dialog, send
from tests.conftest import make_settings
from tests.factories import database_of
from tests.support import GraphQLClient


@pytest.fixture(params=["in-process", "redis"])
def settings(request: pytest.FixtureRequest, database_url: str) -> Settings:
    limits: dict[str, Any] = {"rate_limit_requests": 3, "rate_limit_window": 3600}
    if request.param == "redis":
        # A fresh window per test: the counter keys carry the window number and user id.
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
