"""How a generation ends: settle or release its hold and store the answer's final state.

The ``GenerationManager`` finishes every generation here, in one transaction; the sweeper
and ``cancelGeneration`` use ``recover_orphan`` for generations no process runs any more.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from llm_gateway.db.base import utcnow
from llm_gateway.db.models import Dialog, Message, Model, Reservation
from llm_gateway.enums import MessageStatus, Provider, ReservationState
from llm_gateway.errors import (
    Conflict,
    NotFound,
)
from llm_gateway.observability.metrics import AnswerRecord, GatewayMetrics
from llm_gateway.providers.base import Usage
from llm_gateway.providers.tokens import count_text
from llm_gateway.services.chat.completions import records as api_records
from llm_gateway.services.chat.generation.answer_counts import answer_record, count_after_commit
from llm_gateway.services.chat.planning import GenerationJob
from llm_gateway.services.money import holds
from llm_gateway.services.money.holds import Pricing, Settlement

logger = logging.getLogger("llm_gateway.chat")

_DIALOGS = cast(Table, Dialog.__table__)
_MESSAGES = cast(Table, Message.__table__)
_TOUCH_DIALOG = (
    update(_DIALOGS)
    .where(_DIALOGS.c.id == bindparam("dialog"))
    .values(updated_at=bindparam("now"))
    .returning(_DIALOGS.c.user_id, _DIALOGS.c.deleted_at)
)
_SAVE_PARTIAL = (
    update(_MESSAGES)
    .where(_MESSAGES.c.id == bindparam("message"), _MESSAGES.c.status == MessageStatus.STREAMING)
    .values(content=bindparam("text"))
)
"""Built once: every answer runs these (Core statements, values bound)."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a generation ended, as the runner saw it."""

    status: str  # complete | failed | cancelled | interrupted
    text: str
    model_name: str
    provider: str
    pricing: Pricing
    usage: Usage | None = None
    """As the provider reported it (every kind of token), None when it did not."""
    error_code: str | None = None
    error_message: str | None = None
    ttft_ms: int | None = None
    total_ms: int | None = None


def usage_of(outcome: Outcome, prompt_tokens: int, written: str) -> Usage:
    """The usage to settle: the provider's report, else the prompt as estimated before the
    call and what was ``written``, counted (nothing is known of the cache then)."""
    if outcome.usage is not None:
        return outcome.usage
    return Usage(prompt_tokens, count_text(written, outcome.provider) if written else 0)


@dataclass(frozen=True, slots=True)
class Finished:
    message: Message
    dialog_live: bool | None
    """Whether the dialog is still its user's and not deleted, as the dialog's touch found
    it; None when this finish touched nothing (the answer had ended already)."""


async def finish(
    session: AsyncSession, job: GenerationJob, outcome: Outcome, metrics: GatewayMetrics
) -> Finished:
    """Settle or release the hold and store the message's final state, in one transaction.

    Charged: provider usage when reported, else counted; nothing when no output was
    produced (a failure before the first token). Idempotent: a message that already left
    ``streaming`` is returned unchanged (and is not counted in ``metrics`` again).
    """
    # FOR NO KEY UPDATE: a question sent meanwhile on this answer's branch holds a key
    # share on it (its parent_id), then waits for the balance this finish is about to lock.
    message = await session.scalar(
        select(Message).where(Message.id == job.message_id).with_for_update(key_share=True)
    )
    if message is None:
        raise NotFound("Message not found.", id=str(job.message_id))
    if message.status != MessageStatus.STREAMING:
        return Finished(message, None)
    now = utcnow()
    produced = bool(outcome.text) or outcome.usage is not None
    settlement: Settlement | None = None
    usage = usage_of(outcome, job.prompt_tokens, outcome.text)
    if produced:
        try:
            settlement = await holds.settle(
                session,
                job.reservation_id,
                outcome.pricing,
                usage,
                message_id=job.message_id,
                dialog_id=job.dialog_id,
                now=now,
            )
        except Conflict:
            # The hold was swept (its lease lapsed): nothing is left to charge against.
            logger.error("hold %s was released before settlement", job.reservation_id)
    else:
        await holds.release(session, job.reservation_id, now=now)
    count_after_commit(
        session,
        metrics,
        answer_record("chat", outcome, settlement, usage),
    )
    message.status = outcome.status
    message.content = outcome.text
    message.model_name = outcome.model_name
    message.prompt_tokens = usage.prompt_tokens if produced else message.prompt_tokens
    message.completion_tokens = usage.completion_tokens if produced else 0
    message.cache_read_tokens = usage.cache_read_tokens if produced else None
    message.cache_write_tokens = usage.cache_write_tokens if produced else None
    message.reasoning_tokens = usage.reasoning_tokens if produced else None
    message.charged_tokens = settlement.charged if settlement else 0
    message.cost_usd = settlement.cost_usd if settlement else None
    message.error_code = outcome.error_code
    message.error_message = outcome.error_message
    message.ttft_ms = outcome.ttft_ms
    message.total_ms = outcome.total_ms
    message.completed_at = now
    assert job.dialog_id is not None, "an answer in a dialog"
    touched = (await session.execute(_TOUCH_DIALOG, {"dialog": job.dialog_id, "now": now})).first()
    await session.flush()
    live = touched is not None and touched.user_id == job.user_id and touched.deleted_at is None
    return Finished(message, live)


async def save_partial(session: AsyncSession, message_id: uuid.UUID, text: str) -> None:
    """Persist the text streamed so far (periodically, so a crash loses little)."""
    await session.execute(_SAVE_PARTIAL, {"message": message_id, "text": text})


async def held_reservation_of(session: AsyncSession, message_id: uuid.UUID) -> uuid.UUID | None:
    return await session.scalar(
        select(Reservation.id).where(
            Reservation.message_id == message_id,
            Reservation.state == ReservationState.HELD,
        )
    )


async def recover_orphan(
    session: AsyncSession,
    reservation_id: uuid.UUID,
    *,
    metrics: GatewayMetrics,
    status: str = MessageStatus.INTERRUPTED,
    stale_only: bool = True,
    instance_id: str | None = None,
    now: dt.datetime | None = None,
) -> tuple[int, uuid.UUID | None] | None:
    """Finish a generation no process is running any more, charged for what was saved.

    ``interrupted`` when its process died (the sweeper: only holds whose lease expired, or
    that ``instance_id`` took before it restarted), ``cancelled`` when a user stops one
    nobody runs. Returns (user id, dialog id) when something was finished, else None.
    """
    now = now or utcnow()
    # Lock order as in ``finish`` (and the API's): the message or the API request, then
    # the reservation, then the balance.
    message_id, api_request_id = (
        await session.execute(
            select(Reservation.message_id, Reservation.api_request_id).where(
                Reservation.id == reservation_id
            )
        )
    ).one()
    message = (
        await session.scalar(
            select(Message).where(Message.id == message_id).with_for_update(key_share=True)
        )
        if message_id is not None
        else None
    )
    if api_request_id is not None:
        await api_records.lock(session, api_request_id)
    reservation = await holds.locked_reservation(session, reservation_id)
    if reservation.state != ReservationState.HELD:
        return None
    mine = instance_id is not None and reservation.instance_id == instance_id
    if stale_only and reservation.expires_at >= now and not mine:
        return None  # its generation renewed the lease meanwhile: alive after all
    if message is None or message.status != MessageStatus.STREAMING:
        await holds.release(session, reservation_id, now=now)
        if reservation.api_request_id is not None and await api_records.interrupt(
            session, reservation.api_request_id, now
        ):
            answer = AnswerRecord(
                "api", reservation.model_name or "", "", MessageStatus.INTERRUPTED
            )
            count_after_commit(session, metrics, answer)
        return reservation.user_id, message.dialog_id if message else None
    model = await session.scalar(select(Model).where(Model.name == message.model_name))
    pricing = (
        Pricing.of(model)
        if model
        else Pricing(message.model_name or "", Decimal(1), Decimal(1), Decimal(0), Decimal(0))
    )
    job = GenerationJob(
        message_id=message.id,
        dialog_id=message.dialog_id,
        user_id=message.user_id,
        reservation_id=reservation_id,
        prompt_tokens=message.prompt_tokens or 0,
        targets=(),
    )
    await finish(
        session,
        job,
        Outcome(
            status=status,
            text=message.content,
            model_name=message.model_name or "",
            provider=model.provider if model else Provider.MOCK,
            pricing=pricing,
            error_code="CANCELLED" if status == MessageStatus.CANCELLED else "INTERRUPTED",
            error_message="Stopped at the user's request."
            if status == MessageStatus.CANCELLED
            else "The server stopped before the answer was finished.",
        ),
        metrics,
    )
    return message.user_id, message.dialog_id


async def message_of_reservation(
    session: AsyncSession, reservation_id: uuid.UUID
) -> uuid.UUID | None:
    return await session.scalar(
        select(Reservation.message_id).where(Reservation.id == reservation_id)
    )
