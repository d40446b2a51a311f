"""Holds stay conservative with prompt caching: a hold prices every prompt token at the
dearest input weight, so a prompt the provider writes to its cache entirely (Anthropic's
writes cost 1.25x) is charged in full and never beyond the hold, and the output cap a
small balance affords is cut accordingly."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from sqlalchemy import select

from llm_gateway.db.engine import Database, make_engine
from llm_gateway.db.models import Balance
from llm_gateway.errors import InsufficientBalance
from llm_gateway.providers.base import Usage
from llm_gateway.services.money import holds
from llm_gateway.services.money.holds import Pricing
from tests.money.test_races import check_invariants, in_tx, policy, top_up

CLAUDE_LIKE = Pricing(
    model_name="claude-3-opus",
    prompt_weight=Decimal(1),
    completion_weight=Decimal(5),
    prompt_price_per_1k=Decimal("0.015"),
    completion_price_per_1k=Decimal("0.075"),
    cache_read_weight=Decimal("0.1"),
    cache_write_weight=Decimal("1.25"),
    cache_read_price_per_1k=Decimal("0.0015"),
    cache_write_price_per_1k=Decimal("0.01875"),
)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(make_engine(database_url))
    yield database
    await database.dispose()


async def take(db: Database, prompt: int, cap: int) -> holds.Hold:
    hold: holds.Hold = await in_tx(
        db, lambda s: holds.reserve(s, 1, CLAUDE_LIKE, prompt, cap, policy())
    )
    return hold


async def test_a_prompt_written_to_the_cache_whole_is_charged_in_full(db: Database) -> None:
    await top_up(db, 1, 10_000)
    hold = await take(db, 1_000, 100)
    assert hold.amount == 1_750  # 1,000 at the write weight 1.25 + 100 at 5
    usage = Usage(1_000, 100, cache_write_tokens=1_000)
    settled = await in_tx(db, lambda s: holds.settle(s, hold.reservation_id, CLAUDE_LIKE, usage))
    assert (settled.charged, settled.uncharged) == (1_750, 0)
    assert settled.cost_usd == Decimal("0.02625")  # (1,000·0.01875 + 100·0.075) / 1000
    await check_invariants(db)


async def test_cache_reads_are_charged_far_below_the_hold(db: Database) -> None:
    await top_up(db, 1, 10_000)
    hold = await take(db, 1_000, 100)
    usage = Usage(1_000, 100, cache_read_tokens=900)
    settled = await in_tx(db, lambda s: holds.settle(s, hold.reservation_id, CLAUDE_LIKE, usage))
    assert (settled.charged, settled.uncharged) == (690, 0)  # 100 + 900·0.1 + 100·5
    async with db.read() as session:
        reserved = await session.scalar(select(Balance.reserved).where(Balance.user_id == 1))
    assert reserved == 0  # the rest of the hold came back
    await check_invariants(db)


async def test_a_small_balance_affords_a_cap_at_the_write_weight(db: Database) -> None:
    await top_up(db, 1, 1_400)
    hold = await take(db, 1_000, 100)
    assert hold.output_cap == 30  # (1,400 − 1,000·1.25) / 5
    assert hold.amount == 1_400
    await in_tx(db, lambda s: holds.release(s, hold.reservation_id))
    await in_tx(db, lambda s: holds.reserve(s, 1, CLAUDE_LIKE, 1_000, 100, policy()))
    with pytest.raises(InsufficientBalance) as refused:
        await take(db, 40, 100)  # nothing left: 40·1.25 + 16 (the minimum answer)·5
    assert refused.value.details["needed"] == 130
    await check_invariants(db)
