"""The daily and monthly windows count usage net of refunds, each over its own range."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from llm_gateway.db.models import TokenTransaction
from llm_gateway.services.money import balances
from llm_gateway.services.money.balances import MoneyPolicy
from tests.factories import database_of

NOW = dt.datetime(2026, 3, 15, 12, 0, tzinfo=dt.UTC)


async def _ledger(app: Any, user_id: int, rows: list[tuple[str, int, dt.datetime]]) -> None:
    async with database_of(app).transaction() as session:
        for kind, amount, at in rows:
            session.add(
                TokenTransaction(
                    user_id=user_id, kind=kind, amount=amount, balance_after=0, created_at=at
                )
            )


@pytest.mark.parametrize(
    ("zone", "daily", "monthly"),
    [
        # UTC: today is 15 March; 00:30 UTC counts today, 14 March and 1 March count in the
        # month only, 28 February in neither; the refund today offsets part of today's usage.
        ("UTC", 300 - 50, 300 - 50 + 200 + 100),
        # Los Angeles (UTC-7 in March): 00:30 UTC on the 15th is the evening of the 14th
        # there, and 1 March 03:00 UTC is still February there.
        ("America/Los_Angeles", -50, 300 - 50 + 200),
    ],
)
async def test_windows_split_usage_by_day_and_month(
    app: Any, zone: str, daily: int, monthly: int
) -> None:
    await _ledger(
        app,
        5,
        [
            ("grant", 10_000, dt.datetime(2026, 2, 1, tzinfo=dt.UTC)),
            ("usage", -400, dt.datetime(2026, 2, 28, 10, tzinfo=dt.UTC)),
            ("usage", -100, dt.datetime(2026, 3, 1, 3, tzinfo=dt.UTC)),
            ("usage", -200, dt.datetime(2026, 3, 14, 9, tzinfo=dt.UTC)),
            ("usage", -300, dt.datetime(2026, 3, 15, 0, 30, tzinfo=dt.UTC)),
            ("refund", 50, dt.datetime(2026, 3, 15, 11, tzinfo=dt.UTC)),
            ("topup", 999, dt.datetime(2026, 3, 15, 11, tzinfo=dt.UTC)),  # not usage
        ],
    )
    policy = MoneyPolicy(
        initial_balance=0, min_output_tokens=1, zone=ZoneInfo(zone), lease=dt.timedelta(60)
    )
    async with database_of(app).transaction() as session:
        view = await balances.balance_of(session, 5, policy, now=NOW)
    assert view.daily.used == daily
    assert view.monthly.used == monthly
