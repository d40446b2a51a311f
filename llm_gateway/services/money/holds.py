"""Holds: reserve before a provider call, settle the actual usage, or release (DESIGN §5).

A hold is taken with one conditional ``UPDATE … WHERE balance - reserved >= :hold`` under
the balance's row lock; settling charges at most the hold and writes one ``usage`` row.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import or_, select, update
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
from llm_gateway.services.money.balances import (
    MoneyPolicy,
    Window,
    lock_account,
    windows_of,
)

USD_PLACES = Decimal("0.00000001")


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
    account = await lock_account(session, user_id, policy)
    available = account.balance - account.reserved
    room = available
    binding: Window | None = None
    limited = account.daily_limit is not None or account.monthly_limit is not None
    for window in await windows_of(session, account, policy, now) if limited else ():
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


async def renew_leases(
    session: AsyncSession, reservation_ids: Collection[uuid.UUID], policy: MoneyPolicy
) -> None:
    """Keep the holds of live generations from being swept: one statement per instance."""
    await session.execute(
        update(Reservation)
        .where(Reservation.id.in_(list(reservation_ids)), Reservation.state == "held")
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
