"""Balances, holds and the ledger: the money rules (DESIGN.md §5).

Every change of a balance happens under that balance's row lock (``SELECT … FOR UPDATE``
on PostgreSQL; ``BEGIN IMMEDIATE`` serialises writers on SQLite) and writes its ledger
row in the same transaction, so ``balance == sum(ledger)`` always holds. A hold is taken
with one conditional ``UPDATE`` that cannot overdraw, and the table's CHECK constraints
(``balance >= 0``, ``0 <= reserved <= balance``) stand behind all of it.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import Select, func, insert, or_, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from llm_gateway.db.base import utcnow
from llm_gateway.db.models import Balance, Model, Reservation, TokenTransaction
from llm_gateway.errors import (
    Conflict,
    InsufficientBalance,
    NotFound,
    QuotaExceeded,
    ValidationFailed,
)
from llm_gateway.services import audit
from llm_gateway.services.pagination import (
    Page,
    check_page_size,
    decode_cursor,
    encode_cursor,
    make_page,
)
from llm_gateway.services.patch import UNSET, Unset
from llm_gateway.settings import Settings

MAX_AMOUNT = 10**12
MAX_REASON_LENGTH = 500
MAX_IDEMPOTENCY_KEY_LENGTH = 128
USD_PLACES = Decimal("0.00000001")


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
class Pricing:
    """What one model charges: balance weights per token and USD prices per 1k tokens."""

    model_name: str
    prompt_weight: Decimal
    completion_weight: Decimal
    prompt_price_per_1k: Decimal
    completion_price_per_1k: Decimal

    @staticmethod
    def of(model: Model) -> Pricing:
        return Pricing(
            model_name=model.name,
            prompt_weight=Decimal(model.prompt_weight),
            completion_weight=Decimal(model.completion_weight),
            prompt_price_per_1k=Decimal(model.prompt_price_per_1k),
            completion_price_per_1k=Decimal(model.completion_price_per_1k),
        )

    def charge(self, prompt_tokens: int, completion_tokens: int) -> int:
        """Tokens taken from the balance: ``ceil(prompt·w_p + completion·w_c)``."""
        exact = prompt_tokens * self.prompt_weight + completion_tokens * self.completion_weight
        return math.ceil(exact)

    def cost_usd(self, prompt_tokens: int, completion_tokens: int) -> Decimal:
        cost = (
            prompt_tokens * self.prompt_price_per_1k
            + completion_tokens * self.completion_price_per_1k
        ) / 1000
        return cost.quantize(USD_PLACES, rounding=ROUND_HALF_UP)


@dataclass(frozen=True, slots=True)
class Hold:
    """A reservation taken for one generation."""

    reservation_id: uuid.UUID
    user_id: int
    amount: int
    output_cap: int
    prompt_tokens: int


@dataclass(frozen=True, slots=True)
class Settlement:
    reservation_id: uuid.UUID
    charged: int
    uncharged: int
    cost_usd: Decimal
    balance_after: int


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
                kind="grant",
                balance_after=policy.initial_balance,
                reason="initial balance",
                created_at=now,
            )
        )


async def _lock(session: AsyncSession, user_id: int, policy: MoneyPolicy) -> Balance:
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
    session: AsyncSession, user_ids: list[int], since: dt.datetime
) -> dict[int, int]:
    """Tokens each user spent since ``since``: usage charges net of refunds."""
    rows = await session.execute(
        select(TokenTransaction.user_id, func.sum(TokenTransaction.amount))
        .where(
            TokenTransaction.user_id.in_(user_ids),
            TokenTransaction.kind.in_(("usage", "refund")),
            TokenTransaction.created_at >= since,
        )
        .group_by(TokenTransaction.user_id)
    )
    return {user_id: -int(total or 0) for user_id, total in rows}


async def _windows_many(
    session: AsyncSession, accounts: list[Balance], policy: MoneyPolicy, now: dt.datetime
) -> list[tuple[Window, Window]]:
    """The day and month windows of each account, in two statements."""
    day, next_day, month, next_month = windows_at(now, policy.zone)
    ids = [a.user_id for a in accounts]
    monthly_used = await _used_since(session, ids, month)
    daily_used = await _used_since(session, ids, day)
    return [
        (
            Window("daily", a.daily_limit, daily_used.get(a.user_id, 0), day, next_day),
            Window("monthly", a.monthly_limit, monthly_used.get(a.user_id, 0), month, next_month),
        )
        for a in accounts
    ]


async def _windows(
    session: AsyncSession, account: Balance, policy: MoneyPolicy, now: dt.datetime
) -> tuple[Window, Window]:
    return (await _windows_many(session, [account], policy, now))[0]


def _view(account: Balance, daily: Window, monthly: Window) -> BalanceView:
    return BalanceView(
        user_id=account.user_id,
        balance=account.balance,
        reserved=account.reserved,
        lifetime_used=account.lifetime_used,
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
    daily, monthly = await _windows(session, account, policy, now or utcnow())
    return _view(account, daily, monthly)


async def existing_balance(
    session: AsyncSession, user_id: int, policy: MoneyPolicy, *, now: dt.datetime | None = None
) -> BalanceView:
    """Staff read of a user the gateway already knows; NOT_FOUND otherwise."""
    account = await session.get(Balance, user_id, populate_existing=True)
    if account is None:
        raise NotFound(f"User {user_id} has no balance yet.", userId=user_id)
    daily, monthly = await _windows(session, account, policy, now or utcnow())
    return _view(account, daily, monthly)


# -- holds ------------------------------------------------------------------------------


async def reserve(
    session: AsyncSession,
    user_id: int,
    pricing: Pricing,
    prompt_tokens: int,
    output_cap: int,
    policy: MoneyPolicy,
    *,
    message_id: uuid.UUID | None = None,
    instance_id: str | None = None,
    now: dt.datetime | None = None,
) -> Hold:
    """Hold the prompt plus the output cap, lowering the cap to what the user can afford.

    Raises INSUFFICIENT_BALANCE or QUOTA_EXCEEDED (with the numbers) when not even the
    prompt and a minimal answer fit.
    """
    if prompt_tokens < 0 or output_cap < 1:
        raise ValidationFailed("prompt_tokens must be >= 0 and output_cap >= 1")
    now = now or utcnow()
    account = await _lock(session, user_id, policy)
    available = account.balance - account.reserved
    room = available
    binding: Window | None = None
    limited = account.daily_limit is not None or account.monthly_limit is not None
    for window in await _windows(session, account, policy, now) if limited else ():
        remaining = window.remaining(account.reserved)
        if remaining is not None and remaining < room:
            room, binding = remaining, window

    cap = output_cap
    amount = pricing.charge(prompt_tokens, cap)
    if amount > room:
        cap = _affordable_cap(pricing, prompt_tokens, output_cap, room)
        minimum = min(policy.min_output_tokens, output_cap)
        if cap < minimum:
            needed = pricing.charge(prompt_tokens, minimum)
            if binding is not None:
                raise QuotaExceeded(
                    f"The {binding.name} limit of {binding.limit} tokens is reached.",
                    window=binding.name,
                    limit=binding.limit,
                    used=binding.used,
                    reserved=account.reserved,
                    remaining=room,
                    needed=needed,
                    resetsAt=binding.resets_at.isoformat(),
                )
            raise InsufficientBalance(
                f"This request needs at least {needed} tokens; {available} are available.",
                needed=needed,
                available=available,
            )
        amount = pricing.charge(prompt_tokens, cap)

    held = await session.execute(
        update(Balance)
        .where(Balance.user_id == user_id, Balance.balance - Balance.reserved >= amount)
        .values(reserved=Balance.reserved + amount, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if held.rowcount != 1:  # type: ignore[attr-defined]
        # Unreachable under the row lock; the conditional UPDATE is the last word anyway.
        raise InsufficientBalance("Balance changed while reserving; try again.", needed=amount)
    reservation = Reservation(
        user_id=user_id,
        message_id=message_id,
        model_name=pricing.model_name,
        amount=amount,
        state="held",
        expires_at=now + policy.lease,
        instance_id=instance_id,
        created_at=now,
    )
    session.add(reservation)
    await session.flush()
    return Hold(reservation.id, user_id, amount, cap, prompt_tokens)


def _affordable_cap(pricing: Pricing, prompt_tokens: int, output_cap: int, room: int) -> int:
    if pricing.completion_weight <= 0:
        return output_cap if pricing.charge(prompt_tokens, 0) <= room else 0
    spare = room - prompt_tokens * pricing.prompt_weight
    cap = min(output_cap, max(0, math.floor(spare / pricing.completion_weight)))
    while cap > 0 and pricing.charge(prompt_tokens, cap) > room:  # ceil() of the sum
        cap -= 1
    return cap


async def locked_reservation(session: AsyncSession, reservation_id: uuid.UUID) -> Reservation:
    row = await session.scalar(
        select(Reservation)
        .where(Reservation.id == reservation_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if row is None:
        raise NotFound("Reservation not found.", id=str(reservation_id))
    return row


async def settle(
    session: AsyncSession,
    reservation_id: uuid.UUID,
    pricing: Pricing,
    prompt_tokens: int,
    completion_tokens: int,
    *,
    message_id: uuid.UUID | None = None,
    dialog_id: uuid.UUID | None = None,
    now: dt.datetime | None = None,
) -> Settlement:
    """Charge the actual usage (at most the hold), release the rest, write one ledger row.

    Idempotent: settling a settled reservation returns the first settlement unchanged.
    """
    now = now or utcnow()
    reservation = await locked_reservation(session, reservation_id)
    if reservation.state == "settled":
        row = await session.scalar(
            select(TokenTransaction).where(TokenTransaction.reservation_id == reservation_id)
        )
        assert row is not None
        return Settlement(
            reservation_id,
            -row.amount,
            row.uncharged_tokens or 0,
            row.cost_usd or Decimal(0),
            row.balance_after,
        )
    if reservation.state == "released":
        raise Conflict("This reservation was already released.", id=str(reservation_id))
    account = await session.scalar(
        select(Balance)
        .where(Balance.user_id == reservation.user_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert account is not None
    charge = pricing.charge(prompt_tokens, completion_tokens)
    charged = min(charge, reservation.amount)
    uncharged = charge - charged
    cost = pricing.cost_usd(prompt_tokens, completion_tokens)
    balance_after = account.balance - charged
    await session.execute(
        update(Balance)
        .where(Balance.user_id == reservation.user_id)
        .values(
            balance=Balance.balance - charged,
            reserved=Balance.reserved - reservation.amount,
            lifetime_used=Balance.lifetime_used + charged,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    session.add(
        TokenTransaction(
            user_id=reservation.user_id,
            amount=-charged,
            kind="usage",
            balance_after=balance_after,
            reservation_id=reservation_id,
            message_id=message_id or reservation.message_id,
            dialog_id=dialog_id,
            model_name=pricing.model_name,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            uncharged_tokens=uncharged or None,
            cost_usd=cost,
            created_at=now,
        )
    )
    reservation.state = "settled"
    reservation.closed_at = now
    await session.flush()
    return Settlement(reservation_id, charged, uncharged, cost, balance_after)


async def release(
    session: AsyncSession, reservation_id: uuid.UUID, *, now: dt.datetime | None = None
) -> bool:
    """Give a hold back without charging. Idempotent; False if it was no longer held."""
    now = now or utcnow()
    reservation = await locked_reservation(session, reservation_id)
    if reservation.state != "held":
        return False
    await session.execute(
        select(Balance.user_id).where(Balance.user_id == reservation.user_id).with_for_update()
    )
    await session.execute(
        update(Balance)
        .where(Balance.user_id == reservation.user_id)
        .values(reserved=Balance.reserved - reservation.amount, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    reservation.state = "released"
    reservation.closed_at = now
    await session.flush()
    return True


async def renew_lease(
    session: AsyncSession, reservation_id: uuid.UUID, policy: MoneyPolicy
) -> None:
    """Keep a long generation's hold from being swept."""
    await session.execute(
        update(Reservation)
        .where(Reservation.id == reservation_id, Reservation.state == "held")
        .values(expires_at=utcnow() + policy.lease)
        .execution_options(synchronize_session=False)
    )


async def expired_holds(
    session: AsyncSession,
    *,
    now: dt.datetime | None = None,
    instance_id: str | None = None,
    limit: int = 500,
) -> list[uuid.UUID]:
    """Held reservations whose lease ran out (their owner died or lost track), and with
    ``instance_id`` also every hold that instance took (it has just restarted)."""
    stale = Reservation.expires_at < (now or utcnow())
    if instance_id is not None:
        stale = or_(stale, Reservation.instance_id == instance_id)
    rows = await session.scalars(
        select(Reservation.id)
        .where(Reservation.state == "held", stale)
        .order_by(Reservation.expires_at)
        .limit(limit)
    )
    return list(rows)


# -- staff changes -----------------------------------------------------------------------


def _check_reason(reason: str) -> str:
    reason = reason.strip()
    if not reason or len(reason) > MAX_REASON_LENGTH:
        raise ValidationFailed(
            f"reason is required (at most {MAX_REASON_LENGTH} characters).", field="reason"
        )
    return reason


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
) -> BalanceChange:
    """A staff top-up (``kind='topup'``, positive) or adjustment (either sign)."""
    if kind not in ("topup", "adjustment"):
        raise ValueError(kind)
    if user_id < 1:
        raise ValidationFailed("userId must be positive.", field="userId")
    if kind == "topup" and not 0 < amount <= MAX_AMOUNT:
        raise ValidationFailed(f"amount must be 1 to {MAX_AMOUNT}.", field="amount")
    if kind == "adjustment" and (amount == 0 or abs(amount) > MAX_AMOUNT):
        raise ValidationFailed("amount must be non-zero.", field="amount")
    reason = _check_reason(reason)
    key = _check_key(idempotency_key)

    account = await _lock(session, user_id, policy)
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
        "balance.topup" if kind == "topup" else "balance.adjust",
        "balance",
        user_id,
        before=before,
        after={"balance": account.balance, "amount": amount, "reason": reason},
    )
    return BalanceChange(row, created=True)


async def set_limits(
    session: AsyncSession,
    actor: audit.Actor,
    user_id: int,
    *,
    daily_limit: int | Unset | None = UNSET,
    monthly_limit: int | Unset | None = UNSET,
    policy: MoneyPolicy,
) -> Balance:
    for name, value in (("dailyLimit", daily_limit), ("monthlyLimit", monthly_limit)):
        if isinstance(value, int) and not 0 <= value <= MAX_AMOUNT:
            raise ValidationFailed(f"{name} must be 0 to {MAX_AMOUNT}, or null.", field=name)
    account = await _lock(session, user_id, policy)
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
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 18):
        raise ValidationFailed("Invalid cursor.", field="after")
    return int(raw)


async def _ledger_by_time(
    session: AsyncSession, query: Select[TokenTransaction], size: int, after: str | None
) -> Page[TokenTransaction]:
    if after is not None:
        at, raw = decode_cursor(after, 2)
        try:
            moment = dt.datetime.fromisoformat(at)
        except ValueError:
            raise ValidationFailed("Invalid cursor.", field="after") from None
        if moment.tzinfo is None:
            raise ValidationFailed("Invalid cursor.", field="after")
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
        if not term.isdigit():
            raise ValidationFailed("search takes a user id.", field="search")
        query = query.where(Balance.user_id == int(term))
    if after is not None:
        (raw,) = decode_cursor(after, 1)
        if not raw.isdigit():
            raise ValidationFailed("Invalid cursor.", field="after")
        query = query.where(Balance.user_id > int(raw))
    rows = (await session.scalars(query.order_by(Balance.user_id).limit(size + 1))).all()
    return make_page(
        rows, size, lambda row: encode_cursor(str(row.user_id)), after=after is not None
    )


async def views_of(
    session: AsyncSession, accounts: list[Balance], policy: MoneyPolicy
) -> list[BalanceView]:
    windows = await _windows_many(session, accounts, policy, utcnow())
    return [_view(a, daily, monthly) for a, (daily, monthly) in zip(accounts, windows, strict=True)]
