"""Balances and the ledger: the caller's own, and staff operations on anyone's."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncGenerator
from typing import Annotated

import strawberry

from llm_gateway.enums import LedgerKind
from llm_gateway.errors import Forbidden
from llm_gateway.schema.context import Info
from llm_gateway.schema.inputs import (
    AdjustBalanceInput,
    SetBalanceLimitsInput,
    TopUpBalanceInput,
    patch_value,
)
from llm_gateway.schema.money.accounts import BalanceType, UserAccount
from llm_gateway.schema.money.types import (
    BalanceChangePayload,
    BalanceEvent,
    TransactionKind,
    TransactionType,
)
from llm_gateway.schema.pagination import Connection
from llm_gateway.schema.scalars import SafeInt
from llm_gateway.services.money import balances, ledger
from llm_gateway.services.plumbing.broker_events import BalanceChanged, balance_channel
from llm_gateway.services.staff import reports


async def transactions(
    info: Info,
    first: int | None = None,
    after: str | None = None,
    kind: TransactionKind | None = None,
) -> Connection[TransactionType]:
    """The caller's ledger, newest first."""
    ctx = info.context
    async with ctx.services.db.read() as session:
        page = await ledger.list_transactions(
            session,
            ctx.principal.user_id,
            first=first,
            after=after,
            kind=kind.value if kind else None,
            max_page_size=ctx.services.settings.graphql_max_page_size,
        )
    return Connection.of(page, TransactionType.from_row)


async def user_transactions(
    info: Info,
    user_id: Annotated[
        SafeInt | None, strawberry.argument(description="Whose ledger; null: every user's.")
    ] = None,
    first: int | None = None,
    after: str | None = None,
    kind: TransactionKind | None = None,
    from_: Annotated[
        dt.date | None, strawberry.argument(name="from", description="First UTC day, included.")
    ] = None,
    to: Annotated[
        dt.date | None, strawberry.argument(description="Last UTC day, included.")
    ] = None,
) -> Connection[TransactionType]:
    """Any user's ledger, or everyone's, newest first (staff)."""
    ctx = info.context
    since, until = reports.date_bounds(from_, to)
    async with ctx.services.db.read() as session:
        page = await ledger.list_transactions(
            session,
            user_id,
            first=first,
            after=after,
            kind=kind.value if kind else None,
            max_page_size=ctx.services.settings.graphql_max_page_size,
            since=since,
            until=until,
        )
    return Connection.of(page, TransactionType.from_row)


async def users(
    info: Info, first: int | None = None, after: str | None = None, search: str | None = None
) -> Connection[UserAccount]:
    """Users with a balance, by id; ``search`` is a user id (staff)."""
    ctx = info.context
    async with ctx.services.db.read() as session:
        page = await balances.list_accounts(
            session,
            first=first,
            after=after,
            search=search,
            max_page_size=ctx.services.settings.graphql_max_page_size,
        )
        views = await balances.views_of(
            session, [row for _, row in page.items], ctx.services.policy
        )
    by_user = {view.user_id: UserAccount.from_view(view) for view in views}
    return Connection.of(page, lambda row: by_user[row.user_id])


async def user_balance(info: Info, user_id: SafeInt) -> UserAccount:
    """One user's balance and limits (staff)."""
    ctx = info.context
    async with ctx.services.db.read() as session:
        view = await balances.existing_balance(session, user_id, ctx.services.policy)
    return UserAccount.from_view(view)


async def _change(
    info: Info, data: TopUpBalanceInput | AdjustBalanceInput, kind: str
) -> BalanceChangePayload:
    ctx = info.context
    async with ctx.services.db.transaction() as session:
        change = await ledger.change_balance(
            session,
            ctx.actor(),
            data.user_id,
            data.amount,
            kind=kind,
            reason=data.reason,
            idempotency_key=data.idempotency_key,
            policy=ctx.services.policy,
            broker=ctx.services.broker,
        )
        view = await balances.balance_of(session, data.user_id, ctx.services.policy)
    return BalanceChangePayload(
        transaction=TransactionType.from_row(change.transaction),
        balance=BalanceType.from_view(view),
        replayed=not change.created,
    )


async def top_up_balance(info: Info, input: TopUpBalanceInput) -> BalanceChangePayload:
    """Add tokens to a user's balance (staff; audited; idempotent with a key)."""
    return await _change(info, input, LedgerKind.TOPUP)


async def adjust_balance(info: Info, input: AdjustBalanceInput) -> BalanceChangePayload:
    """Add or take tokens, never below zero (staff; audited; idempotent with a key)."""
    return await _change(info, input, LedgerKind.ADJUSTMENT)


async def set_balance_limits(info: Info, input: SetBalanceLimitsInput) -> UserAccount:
    """Set or remove a user's daily and monthly token limits (staff; audited)."""
    ctx = info.context
    async with ctx.services.db.transaction() as session:
        await ledger.set_limits(
            session,
            ctx.actor(),
            input.user_id,
            daily_limit=patch_value(input.daily_limit),
            monthly_limit=patch_value(input.monthly_limit),
            policy=ctx.services.policy,
            broker=ctx.services.broker,
        )
        view = await balances.balance_of(session, input.user_id, ctx.services.policy)
    return UserAccount.from_view(view)


async def balance_changed(
    info: Info, user_id: SafeInt | None = None
) -> AsyncGenerator[BalanceEvent, None]:
    """The caller's balance now, then after every change; staff may name another user."""
    ctx = info.context
    principal = ctx.principal
    target = principal.user_id if user_id is None else user_id
    if target != principal.user_id and not principal.is_staff:
        raise Forbidden("Only staff may watch another user's balance.")
    services = ctx.services
    with services.metrics.subscribed("balanceChanged"):
        async with services.broker.subscribe(balance_channel(target)) as events:
            # Subscribed first, then the current state: a change in between is not lost.
            async with services.db.transaction() as session:
                view = await balances.balance_of(session, target, services.policy)
            yield BalanceEvent(
                user_id=target, reason="current", balance=BalanceType.from_view(view)
            )
            async for raw in events:
                notice = BalanceChanged.from_wire(raw)
                # A fresh session per event: a subscription holds none between events.
                async with services.db.transaction() as session:
                    view = await balances.balance_of(session, target, services.policy)
                yield BalanceEvent(
                    user_id=target,
                    reason=notice.reason if notice is not None else "",
                    balance=BalanceType.from_view(view),
                )
