"""Taking a hold: reserve the prompt plus the output cap before a provider call (README: money).

A hold is taken with one conditional ``UPDATE … WHERE balance - reserved >= :hold`` (which
takes the balance's row lock), so two sends can never overdraw. For an account without
limits whose balance covers the whole hold, that statement is all it takes (then one
``INSERT`` of the reservation): the hot path, in Core statements. Otherwise the account is
locked first, its limit windows read and the output cap lowered to what fits. ``Pricing``
(``pricing``) prices the hold: every prompt token at the dearest input weight, so caching
never makes the charge exceed the hold.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from dataclasses import dataclass
from typing import cast

from sqlalchemy import Table, bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from llm_gateway.db.base import utcnow
from llm_gateway.db.models import Balance, Reservation, TokenTransaction
from llm_gateway.enums import LedgerKind, ReservationState
from llm_gateway.errors import InsufficientBalance, QuotaExceeded, ValidationFailed
from llm_gateway.services.money.balances import (
    MoneyPolicy,
    Window,
    lock_account,
    windows_at,
    windows_of,
)
from llm_gateway.services.money.holds.pricing import Pricing

BALANCES = cast(Table, Balance.__table__)
RESERVATIONS = cast(Table, Reservation.__table__)
_HOLD_UNLIMITED = (
    update(BALANCES)
    .where(
        BALANCES.c.user_id == bindparam("user"),
        BALANCES.c.daily_limit.is_(None),
        BALANCES.c.monthly_limit.is_(None),
        BALANCES.c.balance - BALANCES.c.reserved >= bindparam("amount"),
    )
    .values(reserved=BALANCES.c.reserved + bindparam("amount"), updated_at=bindparam("now"))
)
_RESERVATION = insert(RESERVATIONS)
"""Built once: the hot path binds values instead of building expressions per hold."""


@dataclass(frozen=True, slots=True)
class KeyBudget:
    """The API key a hold is taken for, and its own daily limit (None: only the user's)."""

    key_id: uuid.UUID
    daily_limit: int | None = None


@dataclass(frozen=True, slots=True)
class Hold:
    """A reservation taken for one generation."""

    reservation_id: uuid.UUID
    user_id: int
    amount: int
    output_cap: int
    prompt_tokens: int


async def reserve(
    session: AsyncSession,
    user_id: int,
    pricing: Pricing,
    prompt_tokens: int,
    output_cap: int,
    policy: MoneyPolicy,
    *,
    message_id: uuid.UUID | None = None,
    api_request_id: uuid.UUID | None = None,
    api_key: KeyBudget | None = None,
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
    amount = pricing.hold(prompt_tokens, output_cap)
    if (api_key is None or api_key.daily_limit is None) and await _hold_unlimited(
        session, user_id, amount, now
    ):
        cap = output_cap
    else:
        cap, amount = await _hold_limited(
            session, user_id, pricing, prompt_tokens, output_cap, policy, api_key, now
        )
    reservation_id = uuid.uuid4()
    await session.execute(
        _RESERVATION,
        {
            "id": reservation_id,
            "user_id": user_id,
            "message_id": message_id,
            "api_request_id": api_request_id,
            "api_key_id": api_key.key_id if api_key is not None else None,
            "model_name": pricing.model_name,
            "amount": amount,
            "state": ReservationState.HELD,
            "expires_at": now + policy.lease,
            "instance_id": instance_id,
            "created_at": now,
        },
    )
    return Hold(reservation_id, user_id, amount, cap, prompt_tokens)


async def _hold_unlimited(
    session: AsyncSession, user_id: int, amount: int, now: dt.datetime
) -> bool:
    """Hold ``amount`` in one statement if the user has an account without limits that
    covers it (False otherwise: nothing was changed)."""
    held = await session.execute(_HOLD_UNLIMITED, {"user": user_id, "amount": amount, "now": now})
    return bool(held.rowcount == 1)  # type: ignore[attr-defined]


async def _hold_limited(
    session: AsyncSession,
    user_id: int,
    pricing: Pricing,
    prompt_tokens: int,
    output_cap: int,
    policy: MoneyPolicy,
    api_key: KeyBudget | None,
    now: dt.datetime,
) -> tuple[int, int]:
    """Hold under the account's row lock what its balance and limits leave room for;
    (output cap, amount) held."""
    account = await lock_account(session, user_id, policy)
    available = account.balance - account.reserved
    room = available
    binding: Window | None = None
    limited = account.daily_limit is not None or account.monthly_limit is not None
    for window in await windows_of(session, account, policy, now) if limited else ():
        remaining = window.remaining(account.reserved)
        if remaining is not None and remaining < room:
            room, binding = remaining, window
    if api_key is not None and api_key.daily_limit is not None:
        # Under the user's row lock: every hold of this key (one user's) waits its turn.
        key_window = await _key_window(session, api_key, policy, now)
        remaining = max(0, api_key.daily_limit - key_window.used)
        if remaining < room:
            room, binding = remaining, key_window

    cap = output_cap
    amount = pricing.hold(prompt_tokens, cap)
    if amount > room:
        cap = _affordable_cap(pricing, prompt_tokens, output_cap, room)
        minimum = min(policy.min_output_tokens, output_cap)
        if cap < minimum:
            needed = pricing.hold(prompt_tokens, minimum)
            if binding is not None:
                raise QuotaExceeded(
                    f"The {_label(binding.name)} limit of {binding.limit} tokens is reached.",
                    window=binding.name,
                    limit=binding.limit,
                    used=binding.used,
                    reserved=account.reserved if binding.name != API_KEY_WINDOW else 0,
                    remaining=room,
                    needed=needed,
                    resetsAt=binding.resets_at.isoformat(),
                )
            raise InsufficientBalance(
                f"This request needs at least {needed} tokens; {available} are available.",
                needed=needed,
                available=available,
            )
        amount = pricing.hold(prompt_tokens, cap)

    held = await session.execute(
        update(BALANCES)
        .where(BALANCES.c.user_id == user_id, BALANCES.c.balance - BALANCES.c.reserved >= amount)
        .values(reserved=BALANCES.c.reserved + amount, updated_at=now)
    )
    if held.rowcount != 1:  # type: ignore[attr-defined]
        # Unreachable under the row lock; the conditional UPDATE is the last word anyway.
        raise InsufficientBalance("Balance changed while reserving; try again.", needed=amount)
    return cap, amount


API_KEY_WINDOW = "apiKeyDaily"


def _label(window: str) -> str:
    return "API key's daily" if window == API_KEY_WINDOW else window


async def _key_window(
    session: AsyncSession, key: KeyBudget, policy: MoneyPolicy, now: dt.datetime
) -> Window:
    """What the key spent today (usage net of refunds) plus what its live holds keep.

    Its holds count in ``used`` here, so the caller must not subtract them again."""
    day, next_day, _, _ = windows_at(now, policy.zone)
    spent = await session.scalar(
        select(func.coalesce(func.sum(TokenTransaction.amount), 0)).where(
            TokenTransaction.api_key_id == key.key_id,
            TokenTransaction.kind.in_((LedgerKind.USAGE, LedgerKind.REFUND)),
            TokenTransaction.created_at >= day,
        )
    )
    held = await session.scalar(
        select(func.coalesce(func.sum(Reservation.amount), 0)).where(
            Reservation.api_key_id == key.key_id, Reservation.state == ReservationState.HELD
        )
    )
    return Window(API_KEY_WINDOW, key.daily_limit, -int(spent or 0) + int(held or 0), day, next_day)


def _affordable_cap(pricing: Pricing, prompt_tokens: int, output_cap: int, room: int) -> int:
    if pricing.completion_weight <= 0:
        return output_cap if pricing.hold(prompt_tokens, 0) <= room else 0
    spare = room - prompt_tokens * pricing.hold_prompt_weight
    cap = min(output_cap, max(0, math.floor(spare / pricing.completion_weight)))
    while cap > 0 and pricing.hold(prompt_tokens, cap) > room:  # ceil() of the sum
        cap -= 1
    return cap
