"""Chat: sending, cancelling, regenerating, and the live message events of a dialog."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import TYPE_CHECKING

from llm_gateway.enums import MessageStatus, Role
from llm_gateway.errors import NotFound, ValidationFailed
from llm_gateway.schema.chat.events import (
    MessageCompleted,
    MessageDelta,
    MessageEvent,
    MessageFailed,
    MessageStarted,
    MessageUsage,
    SendMessagePayload,
)
from llm_gateway.schema.chat.types import MessageType
from llm_gateway.schema.context import Context, Info
from llm_gateway.schema.inputs import (
    CancelGenerationInput,
    EditMessageInput,
    RegenerateInput,
    SendMessageInput,
)
from llm_gateway.schema.money.accounts import BalanceType
from llm_gateway.services.catalog.params import GenerationParams
from llm_gateway.services.chat import announce, dialogs, resending
from llm_gateway.services.chat import live_events as streams
from llm_gateway.services.chat import sending as chat
from llm_gateway.services.chat.generation import outcomes
from llm_gateway.services.chat.planning import Overrides
from llm_gateway.services.chat.sending import SendResult
from llm_gateway.services.money import balances
from llm_gateway.services.plumbing import broker_events as wire
from llm_gateway.services.plumbing.broker import ensure_available

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from llm_gateway.db.models import Message

CANCEL_WAIT_SECONDS = 5.0


def _payload(result: SendResult) -> SendMessagePayload:
    """The committed send as the client sees it (its effects are already registered)."""
    assistant = result.assistant_message
    if result.refusal is not None:
        refusal = result.refusal
        refusal.details.update(
            userMessageId=str(result.user_message.id), assistantMessageId=str(assistant.id)
        )
        raise refusal
    return SendMessagePayload(
        user_message=MessageType.from_row(result.user_message),
        assistant_message=MessageType.from_row(assistant),
        replayed=result.replayed,
    )


def _overrides(input: SendMessageInput | RegenerateInput | EditMessageInput) -> Overrides:
    """The model and generation parameters an asking mutation names for this answer."""
    params = GenerationParams(input.temperature, input.top_p, input.max_tokens, input.stop)
    return Overrides(input.model, params)


async def _asked(
    info: Info, ask: Callable[[AsyncSession, Context], Awaitable[SendResult]]
) -> SendMessagePayload:
    """What every asking mutation shares around its service call (``ask``): refused while
    draining, with the broker down or over the rate limit before anything is held; the
    unit of work, then the send's announcement and launch after its commit."""
    accepted = time.monotonic()  # the gateway's overhead runs from here to the provider call
    ctx = info.context
    services = ctx.services
    services.intake.ensure_open()  # refused before anything is held
    ensure_available(services.broker)
    await services.rate_limiter.hit(ctx.principal.user_id)
    async with services.db.transaction() as session:
        result = await ask(session, ctx)
        announce.after_send(session, services.broker, services.generations, result, accepted)
    return _payload(result)


async def send_message(info: Info, input: SendMessageInput) -> SendMessagePayload:
    """Save the message and a streaming answer, hold the tokens, start the generation.

    Returns at once; follow ``messageEvents`` for the answer. Over budget: the message is
    saved, the answer stored as failed, and the call fails with INSUFFICIENT_BALANCE or
    QUOTA_EXCEEDED carrying the numbers and both message ids. With the broker down it fails
    with SERVICE_UNAVAILABLE before anything is saved or held; once committed, the answer
    is generated, stored and settled even if the broker drops meanwhile.
    """

    def ask(session: AsyncSession, ctx: Context) -> Awaitable[SendResult]:
        return chat.send_message(
            session,
            ctx.principal.user_id,
            input.dialog_id,
            input.content,
            idempotency_key=input.idempotency_key,
            overrides=_overrides(input),
            max_content=ctx.services.limits.max_content_length,
            policy=ctx.services.policy,
            instance_id=ctx.services.instance_id,
        )

    return await _asked(info, ask)


async def regenerate(info: Info, input: RegenerateInput) -> SendMessagePayload:
    """A new answer to the same user message, with its own hold; older answers remain."""

    def ask(session: AsyncSession, ctx: Context) -> Awaitable[SendResult]:
        return resending.regenerate(
            session,
            ctx.principal.user_id,
            input.message_id,
            overrides=_overrides(input),
            policy=ctx.services.policy,
            instance_id=ctx.services.instance_id,
        )

    return await _asked(info, ask)


async def edit_message(info: Info, input: EditMessageInput) -> SendMessagePayload:
    """The question rewritten as a sibling of the original, with a new answer and its own
    hold; the new branch becomes active. Fails like ``sendMessage``."""

    def ask(session: AsyncSession, ctx: Context) -> Awaitable[SendResult]:
        return resending.edit_message(
            session,
            ctx.principal.user_id,
            input.message_id,
            input.content,
            idempotency_key=input.idempotency_key,
            overrides=_overrides(input),
            max_content=ctx.services.limits.max_content_length,
            policy=ctx.services.policy,
            instance_id=ctx.services.instance_id,
        )

    return await _asked(info, ask)


async def cancel_generation(info: Info, input: CancelGenerationInput) -> MessageType:
    """Stop an answer that is streaming; returns it in its final state (charged for what
    was produced). Cancelling a finished answer returns it unchanged."""
    ctx = info.context
    services = ctx.services
    async with services.db.read() as session:
        message = await chat.owned_message(session, ctx.principal.user_id, input.message_id)
    if message.role != Role.ASSISTANT:
        raise ValidationFailed("Only an answer can be cancelled.", field="messageId")
    if message.status == MessageStatus.STREAMING:
        await _stop(ctx, message.id, message.dialog_id)
    async with services.db.read() as session:
        final = await chat.owned_message(session, ctx.principal.user_id, input.message_id)
    return MessageType.from_row(final)


async def _stop(ctx: Context, message_id: uuid.UUID, dialog_id: uuid.UUID) -> None:
    services = ctx.services
    if services.generations.is_running(message_id):
        await services.generations.cancel(message_id)
        await services.generations.wait(message_id)
        return
    # Another instance may run it: ask everyone, wait for its terminal event.
    async with services.broker.subscribe(wire.dialog_channel(dialog_id)) as events:
        await services.generations.cancel(message_id)
        try:
            async with asyncio.timeout(CANCEL_WAIT_SECONDS):
                async for raw in events:
                    event = wire.decode_dialog_event(dialog_id, raw)
                    if isinstance(event, wire.AnswerEnd) and event.message_id == message_id:
                        return
        except TimeoutError:
            pass
    # Nobody runs it: finish it here as cancelled.
    async with services.db.transaction() as session:
        reservation_id = await outcomes.held_reservation_of(session, message_id)
        if reservation_id is not None:
            await outcomes.recover_orphan(
                session,
                reservation_id,
                metrics=services.metrics,
                status=MessageStatus.CANCELLED,
                stale_only=False,
            )


async def message_events(info: Info, dialog_id: uuid.UUID) -> AsyncGenerator[MessageEvent, None]:
    """Typed events of a dialog's answers: started, deltas (numbered), then exactly one of
    completed or failed per answer. Joining mid-answer first gives the text so far."""
    ctx = info.context
    with ctx.services.metrics.subscribed("messageEvents"):
        async for event in message_events_of(ctx, dialog_id):
            yield event


async def message_events_of(
    ctx: Context, dialog_id: uuid.UUID
) -> AsyncGenerator[MessageEvent, None]:
    services = ctx.services
    user_id = ctx.principal.user_id
    async for event in streams.dialog_events(
        services.db,
        services.broker,
        dialog_id,
        services.generations.request_snapshots,
        owner_id=user_id,
    ):
        if isinstance(event, streams.Delta):
            yield MessageDelta(message_id=event.message_id, seq=event.seq, text=event.text)
            continue
        # Events carry their message (a completion also the balance after its charge);
        # only one from an older instance or the sweeper needs them read back. A fresh
        # session per read, closed before yielding: a subscription holds none. An answer's
        # end still checks that the dialog is the caller's and not deleted (as reading the
        # message back did), so a subscription on a deleted dialog ends with NOT_FOUND; a
        # completion's finish made that check as it committed, when it carries a balance.
        row = event.final if isinstance(event, streams.Failed) else event.message
        view: balances.BalanceView | None = None
        if isinstance(event, streams.Completed) and row is not None and event.balance:
            # Its finish read the balance (and found the dialog live) as it committed.
            yield _typed(event, row, event.balance)
            continue
        if row is not None and not isinstance(event, streams.Started):
            async with services.db.read() as session:
                await dialogs.get_dialog(session, user_id, dialog_id)
                if isinstance(event, streams.Completed):
                    with contextlib.suppress(NotFound):
                        view = await balances.existing_balance(session, user_id, services.policy)
        if isinstance(event, streams.Completed) and (row is None or view is None):
            async with services.db.transaction() as session:
                row = row or await chat.owned_message(session, user_id, event.message_id)
                view = await balances.balance_of(session, user_id, services.policy)
        elif row is None:
            async with services.db.read() as session:
                row = await chat.owned_message(session, user_id, event.message_id)
        yield _typed(event, row, view)


def _typed(
    event: streams.MessageEvent, row: Message, view: balances.BalanceView | None
) -> MessageEvent:
    message = MessageType.from_row(row)
    if isinstance(event, streams.Started):
        return MessageStarted(message=message)
    if isinstance(event, streams.Completed):
        assert view is not None
        return MessageCompleted(
            message=message,
            usage=MessageUsage.from_row(row),
            balance=BalanceType.from_view(view),
        )
    assert isinstance(event, streams.Failed)
    return MessageFailed(
        message_id=event.message_id, code=event.code, error_message=event.message, final=message
    )
