"""The ledger: staff top-ups, adjustments and limits, and reading the rows (README: money)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Select, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from llm_gateway.bounds import MAX_SAFE_INTEGER
from llm_gateway.db.base import utcnow
from llm_gateway.db.models import Balance, TokenTransaction
from llm_gateway.enums import LedgerKind
from llm_gateway.errors import (
    Conflict,
    ValidationFailed,
)
from llm_gateway.services.money import notifications
from llm_gateway.services.money.balances import MoneyPolicy, lock_account
from llm_gateway.services.plumbing.broker import Broker
from llm_gateway.services.plumbing.pagination import (
    Page,
    check_page_size,
    cursor_int,
    decode_cursor,
    decode_time_cursor,
    encode_cursor,
    make_page,
)
from llm_gateway.services.plumbing.patch import UNSET, Unset
from llm_gateway.services.staff import audit

MAX_AMOUNT = 10**12
"""The most one top-up, adjustment or limit may be (far below MAX_SAFE_INTEGER)."""
MAX_REASON_LENGTH = 500
MAX_IDEMPOTENCY_KEY_LENGTH = 128
KINDS = tuple(LedgerKind)
"""Every kind of ledger row (the table's check constraint allows exactly these)."""

# -- staff changes -----------------------------------------------------------------------


def _check_reason(reason: str) -> str:
    reason = reason.strip()
    if not reason or len(reason) > MAX_REASON_LENGTH:
        raise ValidationFailed(
            f"reason is required (at most {MAX_REASON_LENGTH} characters).", field="reason"
        )
    return reason


def _check_user(user_id: int) -> None:
    # A larger id could never send a request (the token verifier refuses it), and
    # could not be sent back to the client as a SafeInt.
    if not 1 <= user_id <= MAX_SAFE_INTEGER:
        raise ValidationFailed(f"userId must be 1 to {MAX_SAFE_INTEGER}.", field="userId")


def _check_key(key: str | None) -> str | None:
    if key is not None and not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY_LENGTH:
        raise ValidationFailed(
            f"idempotencyKey must be 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} characters.",
            field="idempotencyKey",
        )
    return key


@dataclass(frozen=True, slots=True)
class BalanceChange:
    transaction: TokenTransaction
    created: bool
    """False when an idempotency key replayed an earlier change."""


async def change_balance(
    session: AsyncSession,
    actor: audit.Actor,
    user_id: int,
    amount: int,
    *,
    kind: str,
    reason: str,
    idempotency_key: str | None,
    policy: MoneyPolicy,
    broker: Broker | None = None,
) -> BalanceChange:
    """A staff top-up (``kind='topup'``, positive) or adjustment (either sign).

    Once committed, balance subscribers are told through ``broker`` (a replay tells nobody).
    """
    if kind not in (LedgerKind.TOPUP, LedgerKind.ADJUSTMENT):
        raise ValueError(kind)
    _check_user(user_id)
    if kind == LedgerKind.TOPUP and not 0 < amount <= MAX_AMOUNT:
        raise ValidationFailed(f"amount must be 1 to {MAX_AMOUNT}.", field="amount")
    if kind == LedgerKind.ADJUSTMENT and (amount == 0 or abs(amount) > MAX_AMOUNT):
        raise ValidationFailed("amount must be non-zero.", field="amount")
    reason = _check_reason(reason)
    key = _check_key(idempotency_key)

    account = await lock_account(session, user_id, policy)
    if key is not None:
        earlier = await session.scalar(
            select(TokenTransaction).where(
                TokenTransaction.user_id == user_id, TokenTransaction.idempotency_key == key
            )
        )
        if earlier is not None:
            if earlier.kind != kind or earlier.amount != amount:
                raise Conflict(
                    "This idempotency key was used for a different change.",
                    field="idempotencyKey",
                )
            return BalanceChange(earlier, created=False)
    before = {"balance": account.balance, "reserved": account.reserved}
    if account.balance + amount < account.reserved:
        raise ValidationFailed(
            f"That would take the balance below zero: at most "
            f"{account.balance - account.reserved} tokens can be taken now.",
            field="amount",
            available=account.balance - account.reserved,
        )
    if account.balance + amount > MAX_SAFE_INTEGER:
        # Refused before anything is written: the response (and every later read) must
        # be able to send the new balance as a SafeInt.
        raise ValidationFailed(
            f"That would take the balance above {MAX_SAFE_INTEGER}: at most "
            f"{MAX_SAFE_INTEGER - account.balance} tokens can be added.",
            field="amount",
            maximum=MAX_SAFE_INTEGER - account.balance,
        )
    now = utcnow()
    account.balance += amount
    account.updated_at = now
    row = TokenTransaction(
        user_id=user_id,
        amount=amount,
        kind=kind,
        balance_after=account.balance,
        actor_id=actor.user_id,
        reason=reason,
        idempotency_key=key,
        created_at=now,
    )
    session.add(row)
    await session.flush()
    await audit.record(
        session,
        actor,
        "balance.topup" if kind == LedgerKind.TOPUP else "balance.adjust",
        "balance",
        user_id,
        before=before,
        after={"balance": account.balance, "amount": amount, "reason": reason},
    )
    notifications.after_change(session, broker, user_id, kind)
    return BalanceChange(row, created=True)


async def set_limits(
    session: AsyncSession,
    actor: audit.Actor,
    user_id: int,
    *,
    daily_limit: int | Unset | None = UNSET,
    monthly_limit: int | Unset | None = UNSET,
    policy: MoneyPolicy,
    broker: Broker | None = None,
) -> Balance:
    """Set or remove the limits; once committed, balance subscribers are told."""
    _check_user(user_id)
    for name, value in (("dailyLimit", daily_limit), ("monthlyLimit", monthly_limit)):
        if isinstance(value, int) and not 0 <= value <= MAX_AMOUNT:
            raise ValidationFailed(f"{name} must be 0 to {MAX_AMOUNT}, or null.", field=name)
    account = await lock_account(session, user_id, policy)
    before = {"dailyLimit": account.daily_limit, "monthlyLimit": account.monthly_limit}
    if not isinstance(daily_limit, Unset):
        account.daily_limit = daily_limit
    if not isinstance(monthly_limit, Unset):
        account.monthly_limit = monthly_limit
    account.updated_at = utcnow()
    await session.flush()
    await audit.record(
        session,
        actor,
        "balance.set_limits",
        "balance",
        user_id,
        before=before,
        after={"dailyLimit": account.daily_limit, "monthlyLimit": account.monthly_limit},
    )
    notifications.after_change(session, broker, user_id, "limits")
    return account


# -- reads -------------------------------------------------------------------------------


async def list_transactions(
    session: AsyncSession,
    user_id: int | None,
    *,
    first: int | None,
    after: str | None,
    kind: str | None,
    max_page_size: int,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> Page[TokenTransaction]:
    """Ledger rows, newest first.

    One user's rows go by id: ids are drawn under the balance's row lock, so they follow
    the order the balance moved in (``balance_after`` reads in sequence). Every user's
    rows (``user_id=None``) go by ``(created_at, id)``, so a date range or a kind is an
    index range (``ix_token_transactions_created_id``, ``…_kind_created``) however far
    back it lies, rather than a walk down the whole ledger from its newest row.
    """
    size = check_page_size(first, max_page_size)
    query = select(TokenTransaction)
    if user_id is not None:
        query = query.where(TokenTransaction.user_id == user_id)
    if kind is not None:
        query = query.where(TokenTransaction.kind == kind)
    if since is not None:
        query = query.where(TokenTransaction.created_at >= since)
    if until is not None:
        query = query.where(TokenTransaction.created_at < until)
    if user_id is None:
        return await _ledger_by_time(session, query, size, after)
    if after is not None:
        (raw,) = decode_cursor(after, 1)
        query = query.where(TokenTransaction.id < _cursor_id(raw))
    rows = (await session.scalars(query.order_by(TokenTransaction.id.desc()).limit(size + 1))).all()
    return make_page(rows, size, lambda row: encode_cursor(str(row.id)), after=after is not None)


def _cursor_id(raw: str) -> int:
    return cursor_int(raw)


async def _ledger_by_time(
    session: AsyncSession, query: Select[TokenTransaction], size: int, after: str | None
) -> Page[TokenTransaction]:
    if after is not None:
        moment, raw = decode_time_cursor(after)
        # A row comparison: PostgreSQL starts the index range right at the cursor.
        query = query.where(
            tuple_(TokenTransaction.created_at, TokenTransaction.id) < (moment, _cursor_id(raw))
        )
    query = query.order_by(TokenTransaction.created_at.desc(), TokenTransaction.id.desc())
    rows = (await session.scalars(query.limit(size + 1))).all()
    return make_page(
        rows,
        size,
        lambda row: encode_cursor(row.created_at.isoformat(), str(row.id)),
        after=after is not None,
    )
