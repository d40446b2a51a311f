"""Asking again: a new answer to a question (``regenerate``), or an edited question with
its own answer (``edit_message``). Both start a sibling branch and make it active.

Like ``sending``, both run inside the caller's transaction and return a ``SendResult``
whose job the caller hands to the ``GenerationManager`` after the commit.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from llm_gateway.db.base import utcnow
from llm_gateway.enums import Role
from llm_gateway.errors import ValidationFailed
from llm_gateway.services.chat import dialogs
from llm_gateway.services.chat.content import check_content, check_idempotency_key
from llm_gateway.services.chat.planning import Overrides, plan_for
from llm_gateway.services.chat.sending import (
    SendResult,
    ask,
    earlier_send,
    owned_message,
    start_answer,
)
from llm_gateway.services.money.balances import MoneyPolicy


async def regenerate(
    session: AsyncSession,
    user_id: int,
    message_id: uuid.UUID,
    *,
    overrides: Overrides,
    policy: MoneyPolicy,
    instance_id: str,
) -> SendResult:
    """A new answer to the same user message; the old answers stay as its siblings.

    ``message_id`` is the question or one of its answers. The context is the branch up
    to the question, whatever follows it; the new answer becomes the dialog's leaf.
    """
    message = await owned_message(session, user_id, message_id)
    if message.role == Role.ASSISTANT:
        if message.parent_id is None:
            raise ValidationFailed("This answer has no question to regenerate.", field="messageId")
        message = await owned_message(session, user_id, message.parent_id)
    if message.role != Role.USER:
        raise ValidationFailed("Only answers to user messages can be regenerated.")
    dialog = await dialogs.get_dialog(session, user_id, message.dialog_id)
    plan = await plan_for(session, dialog, overrides)
    assistant, job, refusal = await start_answer(
        session,
        dialog=dialog,
        user_message=message,
        plan=plan,
        policy=policy,
        instance_id=instance_id,
        now=utcnow(),
    )
    return SendResult(message, assistant, job, refusal=refusal)


async def edit_message(
    session: AsyncSession,
    user_id: int,
    message_id: uuid.UUID,
    content: str,
    *,
    idempotency_key: str | None,
    overrides: Overrides,
    max_content: int,
    policy: MoneyPolicy,
    instance_id: str,
) -> SendResult:
    """The question rewritten: a sibling of ``message_id`` (same parent) with a new answer.

    The original question and everything after it stay, on their own branch. The new
    answer has its own hold, as with ``send_message``, and becomes the dialog's leaf.
    """
    check_content(content, max_content)
    check_idempotency_key(idempotency_key)
    original = await owned_message(session, user_id, message_id)
    replay = await earlier_send(session, user_id, original.dialog_id, idempotency_key)
    if replay is not None:
        return replay
    if original.role != Role.USER:
        raise ValidationFailed("Only your own messages can be edited.", field="messageId")
    dialog = await dialogs.get_dialog(session, user_id, original.dialog_id)
    return await ask(
        session,
        dialog,
        content,
        parent_id=original.parent_id,
        idempotency_key=idempotency_key,
        overrides=overrides,
        policy=policy,
        instance_id=instance_id,
    )
