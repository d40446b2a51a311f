"""balanceChanged over a real websocket, with the in-process broker and with Redis."""

from __future__ import annotations

import pytest

from llm_gateway.settings import Settings
from tests.conftest import REDIS_URL, make_settings
from tests.live import graphql_socket, live_server
from tests.support import token

SUBSCRIPTION = """subscription($userId: SafeInt) {
  balanceChanged(userId: $userId) { userId reason balance { balance available } }
}"""
TOP_UP = """mutation($userId: SafeInt!, $amount: SafeInt!) {
  topUpBalance(input: {userId: $userId, amount: $amount, reason: "test"}) { replayed }
}"""


@pytest.fixture(params=["in-process", "redis"])
def broker_settings(request: pytest.FixtureRequest, database_url: str) -> Settings:
    if request.param == "redis":
        request.getfixturevalue("redis_available")
        return make_settings(database_url, redis_url=REDIS_URL)
    return make_settings(database_url)


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_balance_changes_reach_the_owner_and_staff(broker_settings: Settings) -> None:
    async with live_server(broker_settings) as server:
        owner = {"Authorization": f"Bearer {token(7)}"}
        staff = {"Authorization": f"Bearer {token(900, staff=True)}"}
        async with (
            graphql_socket(server, owner) as mine,
            graphql_socket(server, staff) as watcher,
        ):
            my_id = await mine.subscribe(SUBSCRIPTION)
            my_events = mine.events(my_id)
            first = await anext(my_events)
            assert first["data"]["balanceChanged"] == {
                "userId": 7,
                "reason": "current",
                "balance": {"balance": 10_000, "available": 10_000},
            }
            staff_id = await watcher.subscribe(SUBSCRIPTION, {"userId": 7})
            staff_events = watcher.events(staff_id)
            assert (await anext(staff_events))["data"]["balanceChanged"]["userId"] == 7

            result = await watcher.execute(TOP_UP, {"userId": 7, "amount": 250})
            assert result["data"]["topUpBalance"]["replayed"] is False

            for events in (my_events, staff_events):
                event = (await anext(events))["data"]["balanceChanged"]
                assert event == {
                    "userId": 7,
                    "reason": "topup",
                    "balance": {"balance": 10_250, "available": 10_250},
                }


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_a_user_may_not_watch_someone_else(broker_settings: Settings) -> None:
    owner = {"Authorization": f"Bearer {token(7)}"}
    async with live_server(broker_settings) as server, graphql_socket(server, owner) as socket:
        operation = await socket.subscribe(SUBSCRIPTION, {"userId": 8})
        [result] = [payload async for payload in socket.events(operation)]
        assert result["errors"][0]["extensions"]["code"] == "FORBIDDEN"
