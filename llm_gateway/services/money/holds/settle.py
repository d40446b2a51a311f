"""Closing a hold: settle the actual usage (one ``usage`` ledger row) or release it.

Both lock the reservation first and are idempotent, because a generation's end can be
reached twice: by its own task and by the sweeper after its lease lapsed.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from llm_gateway.db.base import utcnow
from llm_gateway.db.models import Balance, Reservation, TokenTransaction
from llm_gateway.enums import LedgerKind, ReservationState
from llm_gateway.errors import Conflict, NotFound
from llm_gateway.providers.base import Usage
from llm_gateway.services.money.holds.pricing import Pricing


@dataclass(frozen=True, slots=True)
class Settlement:
    reservation_id: uuid.UUID
    charged: int
    uncharged: int
    cost_usd: Decimal
    balance_after: int


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
    usage: Usage,
    *,
    message_id: uuid.UUID | None = None,
    dialog_id: uuid.UUID | None = None,
    now: dt.datetime | None = None,
) -> Settlement:
    """Charge the actual usage (at most the hold), release the rest, write one ledger row
    with every kind of token ``usage`` counts.

    Idempotent: settling a settled reservation returns the first settlement unchanged.
    """
    now = now or utcnow()
    reservation = await locked_reservation(session, reservation_id)
    if reservation.state == ReservationState.SETTLED:
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
    if reservation.state == ReservationState.RELEASED:
        raise Conflict("This reservation was already released.", id=str(reservation_id))
    account = await session.scalar(
        select(Balance)
        .where(Balance.user_id == reservation.user_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert account is not None
    charge = pricing.charge(usage)
    charged = min(charge, reservation.amount)
    uncharged = charge - charged
    cost = pricing.cost_usd(usage)
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
            kind=LedgerKind.USAGE,
            balance_after=balance_after,
            reservation_id=reservation_id,
            message_id=message_id or reservation.message_id,
            dialog_id=dialog_id,
            api_request_id=reservation.api_request_id,
            api_key_id=reservation.api_key_id,
            model_name=pricing.model_name,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cache_read_tokens=usage.cache_read_tokens,
            cache_write_tokens=usage.cache_write_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            uncharged_tokens=uncharged or None,
            cost_usd=cost,
            created_at=now,
        )
    )
    reservation.state = ReservationState.SETTLED
    reservation.closed_at = now
    await session.flush()
    return Settlement(reservation_id, charged, uncharged, cost, balance_after)


async def release(
    session: AsyncSession, reservation_id: uuid.UUID, *, now: dt.datetime | None = None
) -> bool:
    """Give a hold back without charging. Idempotent; False if it was no longer held."""
    now = now or utcnow()
    reservation = await locked_reservation(session, reservation_id)
    if reservation.state != ReservationState.HELD:
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
    reservation.state = ReservationState.RELEASED
    reservation.closed_at = now
    await session.flush()
    return True
