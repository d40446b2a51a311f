"""Leases on held reservations: renewed while a generation runs, swept once they lapse.

A hold outlives its request; the lease is how another instance tells a live generation
from one whose process died (``chat.generation.recovery`` sweeps the latter).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from llm_gateway.db.base import utcnow
from llm_gateway.db.models import Reservation
from llm_gateway.enums import ReservationState
from llm_gateway.services.money.balances import MoneyPolicy


async def renew_leases(
    session: AsyncSession, reservation_ids: Collection[uuid.UUID], policy: MoneyPolicy
) -> None:
    """Keep the holds of live generations from being swept: one statement per instance."""
    await session.execute(
        update(Reservation)
        .where(
            Reservation.id.in_(list(reservation_ids)), Reservation.state == ReservationState.HELD
        )
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
        .where(Reservation.state == ReservationState.HELD, stale)
        .order_by(Reservation.expires_at)
        .limit(limit)
    )
    return list(rows)
