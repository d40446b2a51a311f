"""Closing a hold: settle the actual usage (one ``usage`` ledger row) or release it.

Both are idempotent, because a generation's end can be reached twice: by its own task and
by the sweeper after its lease lapsed. Each closes the hold with one conditional
``UPDATE reservations … WHERE state = 'held' RETURNING …`` (which also takes its row
lock), then moves the balance with one ``UPDATE balances … RETURNING balance`` (its row
lock, in the same order as before: the reservation, then the balance). Core statements,
not the ORM's unit of work: this runs once per answer, on the hot path.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from llm_gateway.db.base import utcnow
from llm_gateway.db.models import Balance, Reservation, TokenTransaction
from llm_gateway.enums import LedgerKind, ReservationState
from llm_gateway.errors import Conflict, NotFound
from llm_gateway.providers.base import Usage
from llm_gateway.services.money.holds.pricing import Pricing

RESERVATIONS = cast(Table, Reservation.__table__)
BALANCES = cast(Table, Balance.__table__)
LEDGER = cast(Table, TokenTransaction.__table__)


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


_CLOSE = (
    update(RESERVATIONS)
    .where(RESERVATIONS.c.id == bindparam("reservation"), RESERVATIONS.c.state == "held")
    .values(state=bindparam("new_state"), closed_at=bindparam("now"))
    .returning(
        RESERVATIONS.c.user_id,
        RESERVATIONS.c.amount,
        RESERVATIONS.c.message_id,
        RESERVATIONS.c.api_request_id,
        RESERVATIONS.c.api_key_id,
    )
)
_CHARGE = (
    update(BALANCES)
    .where(BALANCES.c.user_id == bindparam("user"))
    .values(
        balance=BALANCES.c.balance - bindparam("charged"),
        reserved=BALANCES.c.reserved - bindparam("held"),
        lifetime_used=BALANCES.c.lifetime_used + bindparam("charged"),
        updated_at=bindparam("now"),
    )
    .returning(BALANCES.c.balance)
)
_UNRESERVE = (
    update(BALANCES)
    .where(BALANCES.c.user_id == bindparam("user"))
    .values(reserved=BALANCES.c.reserved - bindparam("held"), updated_at=bindparam("now"))
)
_USAGE_ROW = insert(LEDGER)
"""Built once: the hot path binds values instead of building expressions per answer."""


async def _close(
    session: AsyncSession, reservation_id: uuid.UUID, state: str, now: dt.datetime
) -> Any:
    """Move a held reservation to ``state``; its row, or None when it was not held."""
    closed = await session.execute(
        _CLOSE, {"reservation": reservation_id, "new_state": state, "now": now}
    )
    return closed.first()


async def _state(session: AsyncSession, reservation_id: uuid.UUID) -> str:
    """The state of a reservation that was not held (NOT_FOUND when there is none)."""
    state = await session.scalar(
        select(RESERVATIONS.c.state).where(RESERVATIONS.c.id == reservation_id).with_for_update()
    )
    if state is None:
        raise NotFound("Reservation not found.", id=str(reservation_id))
    return str(state)


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
    held = await _close(session, reservation_id, ReservationState.SETTLED, now)
    if held is None:
        if await _state(session, reservation_id) == ReservationState.RELEASED:
            raise Conflict("This reservation was already released.", id=str(reservation_id))
        return await _earlier_settlement(session, reservation_id)
    charge = pricing.charge(usage)
    charged = min(charge, held.amount)
    uncharged = charge - charged
    cost = pricing.cost_usd(usage)
    balance_after = await session.scalar(
        _CHARGE, {"user": held.user_id, "charged": charged, "held": held.amount, "now": now}
    )
    assert balance_after is not None, "a hold's balance exists"
    await session.execute(
        _USAGE_ROW,
        {
            "user_id": held.user_id,
            "amount": -charged,
            "kind": LedgerKind.USAGE,
            "balance_after": balance_after,
            "reservation_id": reservation_id,
            "message_id": message_id or held.message_id,
            "dialog_id": dialog_id,
            "api_request_id": held.api_request_id,
            "api_key_id": held.api_key_id,
            "model_name": pricing.model_name,
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "cache_read_tokens": usage.cache_read_tokens,
            "cache_write_tokens": usage.cache_write_tokens,
            "reasoning_tokens": usage.reasoning_tokens,
            "uncharged_tokens": uncharged or None,
            "cost_usd": cost,
            "created_at": now,
        },
    )
    return Settlement(reservation_id, charged, uncharged, cost, balance_after)


async def _earlier_settlement(session: AsyncSession, reservation_id: uuid.UUID) -> Settlement:
    row = (
        await session.execute(
            select(
                LEDGER.c.amount,
                LEDGER.c.uncharged_tokens,
                LEDGER.c.cost_usd,
                LEDGER.c.balance_after,
            ).where(LEDGER.c.reservation_id == reservation_id)
        )
    ).one()
    return Settlement(
        reservation_id,
        -row.amount,
        row.uncharged_tokens or 0,
        row.cost_usd or Decimal(0),
        row.balance_after,
    )


async def release(
    session: AsyncSession, reservation_id: uuid.UUID, *, now: dt.datetime | None = None
) -> bool:
    """Give a hold back without charging. Idempotent; False if it was no longer held."""
    now = now or utcnow()
    held = await _close(session, reservation_id, ReservationState.RELEASED, now)
    if held is None:
        await _state(session, reservation_id)  # NOT_FOUND when there is none
        return False
    await session.execute(_UNRESERVE, {"user": held.user_id, "held": held.amount, "now": now})
    return True
