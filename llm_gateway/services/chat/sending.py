"""Sending messages: validation, context, the hold and the stored messages, in one unit.

``send_message`` and ``regenerate`` run inside the caller's transaction and return a
``GenerationJob``; the caller commits, then hands the job to the ``GenerationManager``,
which calls the provider with no session open and finishes through ``outcomes.finish``.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from llm_gateway.db.base import utcnow
from llm_gateway.db.models import Dialog, Message
from llm_gateway.enums import MessageStatus, Role
from llm_gateway.errors import (
    Conflict,
    GatewayError,
    InsufficientBalance,
    NotFound,
    QuotaExceeded,
)
from llm_gateway.providers.base import ProviderRequest
from llm_gateway.services.chat import branches, dialogs
from llm_gateway.services.chat.content import check_content, check_idempotency_key, make_title
from llm_gateway.services.chat.planning import (
    GenerationJob,
    Overrides,
    Plan,
    plan_for,
    targets_for,
)
from llm_gateway.services.chat.prompt_window import fit_context, history_before
from llm_gateway.services.money import holds
from llm_gateway.services.money.balances import MoneyPolicy
from llm_gateway.services.money.holds import Pricing

logger = logging.getLogger("llm_gateway.chat")

ONE_MICROSECOND = dt.timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class SendResult:
    user_message: Message
    assistant_message: Message
    job: GenerationJob | None
    replayed: bool = False
    refusal: GatewayError | None = None
    """Set when the hold was refused: the messages are saved, the answer failed."""


async def start_answer(
    session: AsyncSession,
    *,
    dialog: Dialog,
    user_message: Message,
    plan: Plan,
    policy: MoneyPolicy,
    instance_id: str,
    now: dt.datetime,
) -> tuple[Message, GenerationJob | None, GatewayError | None]:
    model = plan.model
    cap = plan.params.max_tokens or model.max_output_tokens
    history = await history_before(session, dialog.id, user_message.parent_id)
    fitted = fit_context(
        plan.system_prompt,
        history,
        user_message.content,
        provider=model.provider,
        budget=model.context_window - cap,
    )
    assistant = Message(
        id=uuid.uuid4(),
        dialog_id=dialog.id,
        user_id=dialog.user_id,
        role=Role.ASSISTANT,
        content="",
        status=MessageStatus.STREAMING,
        parent_id=user_message.id,
        model_name=model.name,
        prompt_tokens=fitted.prompt_tokens,
        params={
            "temperature": plan.params.temperature,
            "topP": plan.params.top_p,
            "maxTokens": cap,
            "stop": plan.params.stop,
        },
        created_at=now + ONE_MICROSECOND,
    )
    # Lock order: the balance first, then the dialog row (``finish`` settles, then touches
    # the dialog). The hold is taken before this transaction writes the dialog, so an
    # answer settling while the next message is sent cannot deadlock with it.
    try:
        hold = await holds.reserve(
            session,
            dialog.user_id,
            Pricing.of(model),
            fitted.prompt_tokens,
            cap,
            policy,
            message_id=assistant.id,
            instance_id=instance_id,
            now=now,
        )
    except (InsufficientBalance, QuotaExceeded) as refusal:
        assistant.status = MessageStatus.FAILED
        assistant.error_code = refusal.code
        assistant.error_message = refusal.message
        assistant.completed_at = now
        session.add(assistant)
        dialog.updated_at = now
        dialog.active_leaf_id = assistant.id
        await session.flush()
        return assistant, None, refusal
    session.add(assistant)
    dialog.updated_at = now
    dialog.active_leaf_id = assistant.id
    if hold.output_cap != cap:
        assistant.params = {**(assistant.params or {}), "maxTokens": hold.output_cap}
    request = ProviderRequest(
        model=model.upstream_model,
        messages=fitted.messages,
        max_tokens=hold.output_cap,
        temperature=plan.params.temperature,
        top_p=plan.params.top_p,
        stop=plan.params.stop,
    )
    job = GenerationJob(
        message_id=assistant.id,
        dialog_id=dialog.id,
        user_id=dialog.user_id,
        reservation_id=hold.reservation_id,
        prompt_tokens=fitted.prompt_tokens,
        targets=await targets_for(session, plan, request),
    )
    await session.flush()
    return assistant, job, None


async def earlier_send(
    session: AsyncSession, user_id: int, dialog_id: uuid.UUID, idempotency_key: str | None
) -> SendResult | None:
    """What a send or edit with this idempotency key already stored, if it did."""
    if idempotency_key is None:
        return None
    earlier = await session.scalar(
        select(Message).where(
            Message.user_id == user_id, Message.idempotency_key == idempotency_key
        )
    )
    return None if earlier is None else await _replay(session, earlier, dialog_id)


async def store_question(
    session: AsyncSession,
    dialog: Dialog,
    content: str,
    *,
    parent_id: uuid.UUID | None,
    idempotency_key: str | None,
    now: dt.datetime,
) -> Message | SendResult:
    """The user's message on the branch after ``parent_id``, or the replay of a send that
    won a race for the same idempotency key."""
    user_message = Message(
        id=uuid.uuid4(),
        dialog_id=dialog.id,
        user_id=dialog.user_id,
        role=Role.USER,
        content=content,
        status=MessageStatus.COMPLETE,
        idempotency_key=idempotency_key,
        parent_id=parent_id,
        created_at=now,
        completed_at=now,
    )
    if idempotency_key is None:
        session.add(user_message)
        return user_message
    try:
        # A concurrent send with the same key waits on the unique index and loses
        # here; it then returns what the winner stored instead of a second answer.
        async with session.begin_nested():
            session.add(user_message)
            await session.flush()
    except IntegrityError:
        replay = await earlier_send(session, dialog.user_id, dialog.id, idempotency_key)
        if replay is None:
            raise
        return replay
    return user_message


async def send_message(
    session: AsyncSession,
    user_id: int,
    dialog_id: uuid.UUID,
    content: str,
    *,
    idempotency_key: str | None,
    overrides: Overrides,
    max_content: int,
    policy: MoneyPolicy,
    instance_id: str,
) -> SendResult:
    """The question goes at the end of the active branch; its answer becomes the leaf."""
    check_content(content, max_content)
    check_idempotency_key(idempotency_key)
    replay = await earlier_send(session, user_id, dialog_id, idempotency_key)
    if replay is not None:
        return replay
    dialog = await dialogs.get_dialog(session, user_id, dialog_id)
    return await ask(
        session,
        dialog,
        content,
        parent_id=await branches.current_leaf(session, dialog),
        idempotency_key=idempotency_key,
        overrides=overrides,
        policy=policy,
        instance_id=instance_id,
    )


async def ask(
    session: AsyncSession,
    dialog: Dialog,
    content: str,
    *,
    parent_id: uuid.UUID | None,
    idempotency_key: str | None,
    overrides: Overrides,
    policy: MoneyPolicy,
    instance_id: str,
) -> SendResult:
    """A checked question after ``parent_id`` and its answer (which becomes the leaf):
    what a send and an edit share once each has chosen where the question goes."""
    plan = await plan_for(session, dialog, overrides)
    now = utcnow()
    stored = await store_question(
        session, dialog, content, parent_id=parent_id, idempotency_key=idempotency_key, now=now
    )
    if isinstance(stored, SendResult):
        return stored
    if dialog.title is None:
        dialog.title = make_title(content) or None
    assistant, job, refusal = await start_answer(
        session,
        dialog=dialog,
        user_message=stored,
        plan=plan,
        policy=policy,
        instance_id=instance_id,
        now=now,
    )
    return SendResult(stored, assistant, job, refusal=refusal)


async def _replay(session: AsyncSession, earlier: Message, dialog_id: uuid.UUID) -> SendResult:
    if earlier.dialog_id != dialog_id:
        raise Conflict(
            "This idempotency key was used for a message in another dialog.",
            field="idempotencyKey",
        )
    answer = await session.scalar(
        select(Message)
        .where(Message.parent_id == earlier.id, Message.role == Role.ASSISTANT)
        .order_by(Message.created_at)
        .limit(1)
    )
    if answer is None:  # written in the same transaction as the user message
        raise NotFound("The answer to this message is missing.")
    return SendResult(earlier, answer, None, replayed=True)


async def owned_message(session: AsyncSession, user_id: int, message_id: uuid.UUID) -> Message:
    """The caller's own message in a live dialog, or NOT_FOUND."""
    row = await session.scalar(
        select(Message)
        .join(Dialog, Dialog.id == Message.dialog_id)
        .where(
            Message.id == message_id,
            Message.user_id == user_id,
            Dialog.user_id == user_id,
            Dialog.deleted_at.is_(None),
        )
    )
    if row is None:
        raise NotFound("Message not found.", id=str(message_id))
    return row
