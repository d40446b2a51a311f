"""The money invariants under real concurrency: many connections at once, not a loop.

After every scenario: balance == sum(ledger) for every user, reserved == sum(held
reservations), 0 <= reserved <= balance.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from llm_gateway.db.engine import Database, make_engine
from llm_gateway.db.models import Balance, Reservation, TokenTransaction
from llm_gateway.errors import Conflict, GatewayError, InsufficientBalance, QuotaExceeded
from llm_gateway.providers.base import Usage
from llm_gateway.services.money import balances, holds, ledger
from llm_gateway.services.money.balances import MoneyPolicy
from llm_gateway.services.money.holds import Pricing
from llm_gateway.services.staff.audit import Actor

STAFF = Actor(user_id=999)
PRICING = Pricing(
    model_name="gpt-4-turbo",
    prompt_weight=Decimal(1),
    completion_weight=Decimal(1),
    prompt_price_per_1k=Decimal("0.01"),
    completion_price_per_1k=Decimal("0.03"),
)


def policy(initial: int = 0, *, lease_seconds: int = 600) -> MoneyPolicy:
    return MoneyPolicy(
        initial_balance=initial,
        min_output_tokens=16,
        zone=ZoneInfo("UTC"),
        lease=dt.timedelta(seconds=lease_seconds),
    )


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(make_engine(database_url, pool_size=60, max_overflow=20))
    yield database
    await database.dispose()


async def check_invariants(db: Database) -> None:
    async with db.read() as session:
        accounts = (await session.scalars(select(Balance))).all()
        ledger = dict(
            (
                await session.execute(
                    select(TokenTransaction.user_id, func.sum(TokenTransaction.amount)).group_by(
                        TokenTransaction.user_id
                    )
                )
            ).all()
        )
        held = dict(
            (
                await session.execute(
                    select(Reservation.user_id, func.sum(Reservation.amount))
                    .where(Reservation.state == "held")
                    .group_by(Reservation.user_id)
                )
            ).all()
        )
    for account in accounts:
        assert account.balance >= 0
        assert 0 <= account.reserved <= account.balance
        assert account.balance == int(ledger.get(account.user_id, 0)), account.user_id
        assert account.reserved == int(held.get(account.user_id, 0)), account.user_id


async def in_tx(db: Database, fn: Callable[[Any], Awaitable[Any]]) -> Any:
    async with db.transaction() as session:
        return await fn(session)


async def top_up(db: Database, user: int, amount: int, key: str | None = None) -> Any:
    return await in_tx(
        db,
        lambda s: ledger.change_balance(
            s,
            STAFF,
            user,
            amount,
            kind="topup",
            reason="test",
            idempotency_key=key,
            policy=policy(),
        ),
    )


async def reserve(db: Database, user: int, prompt: int, cap: int, p: MoneyPolicy) -> Any:
    return await in_tx(db, lambda s: holds.reserve(s, user, PRICING, prompt, cap, p))


@pytest.mark.postgres_only
async def test_fifty_concurrent_reserves_against_a_balance_for_ten(db: Database) -> None:
    await top_up(db, 1, 10 * 1_000)
    outcomes = await asyncio.gather(
        *(reserve(db, 1, 200, 800, policy()) for _ in range(50)), return_exceptions=True
    )
    taken = [o for o in outcomes if isinstance(o, holds.Hold)]
    refused = [o for o in outcomes if isinstance(o, InsufficientBalance)]
    assert len(taken) == 10, outcomes
    assert len(refused) == 40
    assert all(h.amount == 1_000 and h.output_cap == 800 for h in taken)
    async with db.read() as session:
        account = await session.get(Balance, 1)
        assert account is not None
        assert (account.balance, account.reserved) == (10_000, 10_000)
    await check_invariants(db)


@pytest.mark.postgres_only
async def test_concurrent_settles_and_top_ups_lose_no_update(db: Database) -> None:
    await top_up(db, 1, 100_000)
    taken = await asyncio.gather(*(reserve(db, 1, 100, 900, policy()) for _ in range(30)))
    usages = [(100, random.Random(i).randint(0, 900)) for i in range(30)]

    async def settle(hold: holds.Hold, usage: tuple[int, int]) -> Any:
        return await in_tx(
            db, lambda s: holds.settle(s, hold.reservation_id, PRICING, Usage(*usage))
        )

    results = await asyncio.gather(
        *(settle(h, u) for h, u in zip(taken, usages, strict=True)),
        *(top_up(db, 1, 7) for _ in range(30)),
    )
    charged = sum(r.charged for r in results[:30])
    assert charged == sum(p + c for p, c in usages)
    async with db.read() as session:
        account = await session.get(Balance, 1)
        assert account is not None
        assert account.balance == 100_000 + 30 * 7 - charged
        assert account.reserved == 0
        assert account.lifetime_used == charged
    await check_invariants(db)


@pytest.mark.postgres_only
async def test_settling_twice_concurrently_charges_once(db: Database) -> None:
    await top_up(db, 1, 5_000)
    hold = await reserve(db, 1, 100, 1_000, policy())
    results = await asyncio.gather(
        *(
            in_tx(db, lambda s: holds.settle(s, hold.reservation_id, PRICING, Usage(100, 400)))
            for _ in range(10)
        )
    )
    assert {r.charged for r in results} == {500}
    async with db.read() as session:
        usage_rows = await session.scalar(
            select(func.count()).where(TokenTransaction.kind == "usage")
        )
    assert usage_rows == 1
    await check_invariants(db)


@pytest.mark.postgres_only
async def test_the_same_idempotency_key_concurrently_writes_one_row(db: Database) -> None:
    results = await asyncio.gather(*(top_up(db, 1, 250, key="k-1") for _ in range(20)))
    assert sum(r.created for r in results) == 1
    assert len({r.transaction.id for r in results}) == 1
    async with db.read() as session:
        rows = await session.scalar(
            select(func.count()).where(TokenTransaction.idempotency_key == "k-1")
        )
        account = await session.get(Balance, 1)
    assert rows == 1
    assert account is not None
    assert account.balance == 250
    await check_invariants(db)


@pytest.mark.postgres_only
async def test_concurrent_first_requests_grant_once(db: Database) -> None:
    grant = policy(initial=10_000)

    async def first_use(session: Any) -> Any:
        return await balances.balance_of(session, 42, grant)

    views = await asyncio.gather(*(in_tx(db, first_use) for _ in range(25)))
    assert {v.balance for v in views} == {10_000}
    async with db.read() as session:
        grants = await session.scalar(
            select(func.count()).where(
                TokenTransaction.user_id == 42, TokenTransaction.kind == "grant"
            )
        )
    assert grants == 1
    await check_invariants(db)


@pytest.mark.postgres_only
async def test_daily_limit_holds_under_concurrency(db: Database) -> None:
    await top_up(db, 1, 1_000_000)
    await in_tx(db, lambda s: ledger.set_limits(s, STAFF, 1, daily_limit=5_000, policy=policy()))
    outcomes = await asyncio.gather(
        *(reserve(db, 1, 100, 900, policy()) for _ in range(20)), return_exceptions=True
    )
    taken = [o for o in outcomes if isinstance(o, holds.Hold)]
    assert len(taken) == 5
    assert all(isinstance(o, QuotaExceeded) for o in outcomes if o not in taken)
    assert sum(h.amount for h in taken) == 5_000
    await check_invariants(db)


async def test_random_operations_keep_the_invariants(db: Database) -> None:
    """Seeded random batches of every operation, run concurrently; check after each."""
    rng = random.Random(20261126)
    users = [1, 2, 3]
    taken: list[holds.Hold] = []
    ops = 0

    async def one(op: str) -> None:
        nonlocal ops
        user = rng.choice(users)
        try:
            if op == "topup":
                await top_up(db, user, rng.randint(1, 3_000), key=rng.choice([None, "dup"]))
            elif op == "adjust":
                amount = rng.choice([-1, 1]) * rng.randint(1, 2_000)
                await in_tx(
                    db,
                    lambda s: ledger.change_balance(
                        s,
                        STAFF,
                        user,
                        amount,
                        kind="adjustment",
                        reason="r",
                        idempotency_key=None,
                        policy=policy(),
                    ),
                )
            elif op == "reserve":
                taken.append(
                    await reserve(
                        db, user, rng.randint(0, 500), rng.randint(1, 2_000), policy(initial=1_000)
                    )
                )
            elif op == "settle" and taken:
                hold = taken.pop(rng.randrange(len(taken)))
                usage = (
                    hold.prompt_tokens + rng.randint(-5, 5),
                    rng.randint(0, hold.output_cap + 50),
                )
                await in_tx(
                    db,
                    lambda s: holds.settle(
                        s, hold.reservation_id, PRICING, Usage(max(0, usage[0]), usage[1])
                    ),
                )
            elif op == "release" and taken:
                hold = taken.pop(rng.randrange(len(taken)))
                await in_tx(db, lambda s: holds.release(s, hold.reservation_id))
            elif op == "limits":
                daily = rng.choice([None, rng.randint(0, 20_000)])
                await in_tx(
                    db,
                    lambda s: ledger.set_limits(s, STAFF, user, daily_limit=daily, policy=policy()),
                )
            ops += 1
        except (InsufficientBalance, QuotaExceeded, Conflict):
            pass
        except GatewayError as exc:  # validation of a random adjustment below zero
            if exc.code != "VALIDATION_FAILED":
                raise

    kinds = ["topup", "adjust", "reserve", "reserve", "settle", "settle", "release", "limits"]
    for _ in range(25):
        batch = [rng.choice(kinds) for _ in range(8)]
        await asyncio.gather(*(one(op) for op in batch))
        await check_invariants(db)
    # Whatever is still held can always be settled or released.
    for hold in taken:
        async with db.transaction() as session:
            await holds.release(session, hold.reservation_id)
    await check_invariants(db)
    assert ops > 100


async def test_a_hold_lowers_the_cap_to_what_is_affordable(db: Database) -> None:
    await top_up(db, 1, 600)
    hold = await reserve(db, 1, 100, 4_096, policy())
    assert (hold.output_cap, hold.amount) == (500, 600)
    with pytest.raises(InsufficientBalance) as refused:
        await reserve(db, 1, 100, 4_096, policy())
    assert refused.value.details == {"needed": 116, "available": 0}
    await check_invariants(db)


async def test_usage_beyond_the_hold_is_capped_and_recorded(db: Database) -> None:
    await top_up(db, 1, 10_000)
    hold = await reserve(db, 1, 100, 200, policy())
    settled = await in_tx(
        db, lambda s: holds.settle(s, hold.reservation_id, PRICING, Usage(150, 400))
    )
    assert (settled.charged, settled.uncharged) == (300, 250)
    async with db.read() as session:
        row = await session.scalar(select(TokenTransaction).where(TokenTransaction.kind == "usage"))
    assert row is not None
    assert (row.amount, row.uncharged_tokens, row.balance_after) == (-300, 250, 9_700)
    assert row.cost_usd == Decimal("0.01350000")  # 150 × 0.01/1k + 400 × 0.03/1k
    await check_invariants(db)


async def test_expired_holds_are_swept(db: Database) -> None:
    from llm_gateway.observability.metrics import GatewayMetrics
    from llm_gateway.services.chat.generation.recovery import sweep_once
    from llm_gateway.services.plumbing.broker import InProcessBroker

    await top_up(db, 1, 10_000)
    short = policy(lease_seconds=10)
    past = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    stale = await in_tx(db, lambda s: holds.reserve(s, 1, PRICING, 10, 100, short, now=past))
    live = await reserve(db, 1, 10, 100, policy())
    assert await sweep_once(db, InProcessBroker(), GatewayMetrics()) == 1
    async with db.read() as session:
        states = {r.id: r.state for r in (await session.scalars(select(Reservation))).all()}
    assert states == {stale.reservation_id: "released", live.reservation_id: "held"}
    with pytest.raises(Conflict):
        await in_tx(db, lambda s: holds.settle(s, stale.reservation_id, PRICING, Usage(1, 1)))
    await check_invariants(db)
