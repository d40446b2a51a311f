"""Effects after commit: a change tells other instances only once it is committed.

Services register their broker notices with the unit of work (``db.engine.after_commit``);
``Database.transaction()`` sends them after the commit and drops them on a rollback, so a
subscriber never hears of a change that did not happen, and always hears of one that did,
on every instance.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import select

from llm_gateway.app import create_app
from llm_gateway.db.engine import Database, after_commit, make_engine
from llm_gateway.db.models import Balance
from llm_gateway.services.money import ledger
from llm_gateway.services.plumbing.broker_events import CONFIG_CHANNEL, balance_channel
from llm_gateway.services.staff.audit import Actor
from tests.conftest import make_settings
from tests.faults import until
from tests.support import GraphQLClient

STAFF = Actor(user_id=900)
USER = 7
NOTICE_SECONDS = 5.0  # a bound on waiting for a notice that must come, not a timing claim


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(make_engine(database_url, pool_size=2, max_overflow=0))
    yield database
    await database.dispose()


async def _balance(db: Database, user_id: int) -> int | None:
    async with db.read() as session:
        return await session.scalar(select(Balance.balance).where(Balance.user_id == user_id))


async def test_effects_run_after_the_commit_in_order_and_a_failing_one_is_contained(
    db: Database, app: Any
) -> None:
    policy = app.state.services.policy
    seen: list[object] = []

    async def look() -> None:
        seen.append(await _balance(db, USER))  # another session: sees only what is committed

    async def broken() -> None:
        raise RuntimeError("the broker exploded")

    async def after() -> None:
        seen.append("after")

    async with db.transaction() as session:
        await ledger.change_balance(
            session, STAFF, USER, 500, kind="topup", reason="t", idempotency_key=None, policy=policy
        )
        for effect in (look, broken, after):
            after_commit(session, effect)
        assert seen == []  # nothing runs inside the unit of work
    # Committed first; the failure cost the request nothing, nor the effects after it.
    assert seen == [policy.initial_balance + 500, "after"]


async def test_a_rolled_back_change_runs_no_effect(db: Database) -> None:
    ran: list[str] = []

    async def effect() -> None:
        ran.append("ran")

    async def failing_change() -> None:
        async with db.transaction() as session:
            after_commit(session, effect)
            raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError):
        await failing_change()
    async with db.read() as session:
        after_commit(session, effect)  # a read never commits
    assert ran == []


async def _rolled_back_top_up(services: Any) -> None:
    async with services.db.transaction() as session:
        await ledger.change_balance(
            session,
            STAFF,
            USER,
            500,
            kind="topup",
            reason="rolled back",
            idempotency_key=None,
            policy=services.policy,
            broker=services.broker,
        )
        raise RuntimeError("something later in the same unit of work failed")


async def test_a_rolled_back_top_up_tells_no_subscriber(app: Any, gql: GraphQLClient) -> None:
    services = app.state.services
    async with services.broker.subscribe(balance_channel(USER)) as notices:
        with pytest.raises(RuntimeError):
            await _rolled_back_top_up(services)
        limits = await gql(
            "mutation { setBalanceLimits(input: {userId: 7, dailyLimit: 100})"
            " { balance { balance dailyLimit } } }",
            staff=True,
        )
        untouched = services.policy.initial_balance
        assert limits.ok()["setBalanceLimits"]["balance"] == {
            "balance": untouched,
            "dailyLimit": 100,
        }
        # The first notice is the committed change's: the rolled-back top-up sent none.
        assert await notices.within(NOTICE_SECONDS) == {"userId": USER, "reason": "limits"}


@pytest.fixture
async def two_instances(database_url: str, redis_available: str) -> AsyncIterator[list[Any]]:
    """Two gateways on one database and one Redis, as two servers behind a balancer."""
    settings = make_settings(database_url, redis_url=redis_available, config_cache_seconds=3600)
    first, second = create_app(settings), create_app(settings)
    async with LifespanManager(first), LifespanManager(second):
        yield [first, second]


def _client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw.test")


async def test_committed_changes_reach_the_other_instance(two_instances: list[Any]) -> None:
    a, b = two_instances
    async with (
        b.state.services.broker.subscribe(balance_channel(USER)) as balance_on_b,
        b.state.services.broker.subscribe(CONFIG_CHANNEL) as config_on_b,
        _client(a) as http,
    ):
        gql = GraphQLClient(http)
        topped = await gql(
            'mutation { topUpBalance(input: {userId: 7, amount: 250, reason: "x"})'
            " { balance { balance } } }",
            staff=True,
        )
        assert topped.errors == [], topped.errors
        assert await balance_on_b.within(NOTICE_SECONDS) == {"userId": USER, "reason": "topup"}

        window = await gql(
            'mutation { setConfig(input: {key: "RATE_LIMIT_WINDOW", value: "33"}) { key } }',
            staff=True,
        )
        assert window.ok()["setConfig"] == {"key": "RATE_LIMIT_WINDOW"}
        assert a.state.services.limits.rate_limit_window == 33  # at once where it was made
        assert await config_on_b.within(NOTICE_SECONDS) == {"key": "RATE_LIMIT_WINDOW"}

        async def b_follows() -> bool:  # B's watcher refreshes on the same notice
            return bool(b.state.services.limits.rate_limit_window == 33)

        await until(b_follows, within=NOTICE_SECONDS, what="B re-read its settings")

        model = await gql(
            'mutation { updateModel(input: {name: "gpt-4-turbo", displayName: "GPT"}) { name } }',
            staff=True,
        )
        assert model.errors == [], model.errors
        assert await config_on_b.within(NOTICE_SECONDS) == {"key": "models"}
