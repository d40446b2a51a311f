"""Balances: a user's account, its limit windows, and opening it on first use (README: money).

Every change of a balance happens under that balance's row lock (``SELECT … FOR UPDATE``
on PostgreSQL; ``BEGIN IMMEDIATE`` serialises writers on SQLite) and writes its ledger
row in the same transaction, so ``balance == sum(ledger)`` always holds; the table's CHECK
constraints (``balance >= 0``, ``0 <= reserved <= balance``) stand behind all of it. Holds
are in ``holds.py``, staff changes and ledger reads in ``ledger.py``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from llm_gateway.bounds import saturated
from llm_gateway.db.base import utcnow
from llm_gateway.db.models import Balance, TokenTransaction
from llm_gateway.enums import LedgerKind
from llm_gateway.errors import (
    NotFound,
    ValidationFailed,
)
from llm_gateway.services.money.account_rows import ACCOUNT, USED_SINCE, Account
from llm_gateway.services.plumbing.pagination import (
    Page,
    check_page_size,
    cursor_int,
    decode_cursor,
    encode_cursor,
    make_page,
)
from llm_gateway.settings import Settings


@dataclass(frozen=True, slots=True)
class MoneyPolicy:
    """The settings the money rules depend on."""

    initial_balance: int
    min_output_tokens: int
    zone: ZoneInfo
    lease: dt.timedelta

    @staticmethod
    def from_settings(settings: Settings) -> MoneyPolicy:
        return MoneyPolicy(
            initial_balance=settings.initial_token_balance,
            min_output_tokens=settings.min_output_tokens,
            zone=settings.limits_zone,
            lease=dt.timedelta(seconds=settings.reservation_lease_seconds),
        )


@dataclass(frozen=True, slots=True)
class Window:
    """A limit window (calendar day or month in the configured zone)."""

    name: str
    limit: int | None
    used: int
    starts_at: dt.datetime
    resets_at: dt.datetime

    def remaining(self, reserved: int) -> int | None:
        if self.limit is None:
            return None
        return max(0, self.limit - self.used - reserved)


@dataclass(frozen=True, slots=True)
class BalanceView:
    user_id: int
    balance: int
    reserved: int
    lifetime_used: int
    daily: Window
    monthly: Window
    created_at: dt.datetime | None = None

    @property
    def available(self) -> int:
        return self.balance - self.reserved


def windows_at(
    now: dt.datetime, zone: ZoneInfo
) -> tuple[dt.datetime, dt.datetime, dt.datetime, dt.datetime]:
    """Start and end (UTC) of the calendar day and month containing ``now`` in ``zone``."""
    local = now.astimezone(zone)
    day = dt.datetime(local.year, local.month, local.day, tzinfo=zone)
    next_day = day + dt.timedelta(days=1)
    next_day = dt.datetime(next_day.year, next_day.month, next_day.day, tzinfo=zone)
    month = dt.datetime(local.year, local.month, 1, tzinfo=zone)
    next_month = dt.datetime(local.year + (local.month == 12), local.month % 12 + 1, 1, tzinfo=zone)
    return (
        day.astimezone(dt.UTC),
        next_day.astimezone(dt.UTC),
        month.astimezone(dt.UTC),
        next_month.astimezone(dt.UTC),
    )


# -- accounts -------------------------------------------------------------------------


async def ensure_account(session: AsyncSession, user_id: int, policy: MoneyPolicy) -> None:
    """Create the user's balance on first use, granting the initial balance exactly once.

    ``INSERT … ON CONFLICT DO NOTHING`` makes concurrent first requests agree: only
    the one whose insert lands writes the ``grant`` row, in the same transaction.
    """
    if await session.get(Balance, user_id) is not None:
        return
    dialect = session.get_bind().dialect.name
    insert_fn = postgresql.insert if dialect == "postgresql" else sqlite.insert
    now = utcnow()
    created = await session.execute(
        insert_fn(Balance)
        .values(
            user_id=user_id,
            balance=policy.initial_balance,
            reserved=0,
            lifetime_used=0,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=[Balance.user_id])
        .returning(Balance.user_id)
    )
    if created.scalar() is not None and policy.initial_balance > 0:
        await session.execute(
            insert(TokenTransaction).values(
                user_id=user_id,
                amount=policy.initial_balance,
                kind=LedgerKind.GRANT,
                balance_after=policy.initial_balance,
                reason="initial balance",
                created_at=now,
            )
        )


async def lock_account(session: AsyncSession, user_id: int, policy: MoneyPolicy) -> Balance:
    await ensure_account(session, user_id, policy)
    row = await session.scalar(
        select(Balance)
        .where(Balance.user_id == user_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert row is not None  # just ensured
    return row


async def _used_since(
    session: AsyncSession, user_ids: list[int], month: dt.datetime, day: dt.datetime
) -> dict[int, tuple[int, int]]:
    """Tokens each user spent this month and today (usage net of refunds), in one statement.

    The day always lies inside the month, so one range scan serves both sums.
    """
    rows = await session.execute(USED_SINCE, {"users": user_ids, "month": month, "day": day})
    # Sums of usage only grow; capped, a balance view can always be sent (SafeInt).
    return {
        user_id: (saturated(-int(monthly or 0)), saturated(-int(daily or 0)))
        for user_id, monthly, daily in rows
    }


async def _windows_many(
    session: AsyncSession, accounts: Sequence[Account], policy: MoneyPolicy, now: dt.datetime
) -> list[tuple[Window, Window]]:
    """The day and month windows of each account, in one statement."""
    day, next_day, month, next_month = windows_at(now, policy.zone)
    used = await _used_since(session, [a.user_id for a in accounts], month, day)
    windows = []
    for a in accounts:
        monthly_used, daily_used = used.get(a.user_id, (0, 0))
        windows.append(
            (
                Window("daily", a.daily_limit, daily_used, day, next_day),
                Window("monthly", a.monthly_limit, monthly_used, month, next_month),
            )
        )
    return windows


async def windows_of(
    session: AsyncSession, account: Account, policy: MoneyPolicy, now: dt.datetime
) -> tuple[Window, Window]:
    return (await _windows_many(session, [account], policy, now))[0]


def _view(account: Account, daily: Window, monthly: Window) -> BalanceView:
    return BalanceView(
        user_id=account.user_id,
        balance=account.balance,
        reserved=account.reserved,
        lifetime_used=saturated(account.lifetime_used),
        daily=daily,
        monthly=monthly,
        created_at=account.created_at,
    )


async def balance_of(
    session: AsyncSession, user_id: int, policy: MoneyPolicy, *, now: dt.datetime | None = None
) -> BalanceView:
    """The user's balance and limit windows (their account is created on first use)."""
    await ensure_account(session, user_id, policy)
    account = await session.get(Balance, user_id, populate_existing=True)
    assert account is not None
    daily, monthly = await windows_of(session, account, policy, now or utcnow())
    return _view(account, daily, monthly)


async def existing_balance(
    session: AsyncSession, user_id: int, policy: MoneyPolicy, *, now: dt.datetime | None = None
) -> BalanceView:
    """Staff read of a user the gateway already knows; NOT_FOUND otherwise."""
    row = (await session.execute(ACCOUNT, {"user": user_id})).first()
    account = cast(Account | None, row)
    if account is None:
        raise NotFound(f"User {user_id} has no balance yet.", userId=user_id)
    daily, monthly = await windows_of(session, account, policy, now or utcnow())
    return _view(account, daily, monthly)


async def list_accounts(
    session: AsyncSession,
    *,
    first: int | None,
    after: str | None,
    search: str | None,
    max_page_size: int,
) -> Page[Balance]:
    """Users the gateway knows (those with a balance), by id; ``search`` is an id."""
    size = check_page_size(first, max_page_size)
    query = select(Balance)
    if search is not None and search.strip():
        term = search.strip()
        if not (term.isascii() and term.isdigit() and len(term) <= 18):
            raise ValidationFailed("search takes a user id.", field="search")
        query = query.where(Balance.user_id == int(term))
    if after is not None:
        (raw,) = decode_cursor(after, 1)
        query = query.where(Balance.user_id > cursor_int(raw))
    rows = (await session.scalars(query.order_by(Balance.user_id).limit(size + 1))).all()
    return make_page(
        rows, size, lambda row: encode_cursor(str(row.user_id)), after=after is not None
    )


async def views_of(
    session: AsyncSession, accounts: list[Balance], policy: MoneyPolicy
) -> list[BalanceView]:
    windows = await _windows_many(session, accounts, policy, utcnow())
    return [_view(a, daily, monthly) for a, (daily, monthly) in zip(accounts, windows, strict=True)]
