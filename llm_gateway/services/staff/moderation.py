"""Staff moderation of any user's dialogs: look one up, count messages, delete.

A dialog is soft-deleted exactly as its owner's own delete does (``deleted_at``), so it
vanishes from the owner's reads while staff can still see it. A single message is removed
outright, but never while it is being generated. Money is untouched either way: the
ledger (``token_transactions``) and the holds (``reservations``) keep the message and
dialog ids as plain columns with no foreign key, so every charge stays where it was and
balances still equal the ledger's sum. Every deletion is audited in the same transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from llm_gateway.db.base import utcnow
from llm_gateway.db.models import Dialog, Message
from llm_gateway.enums import MessageStatus
from llm_gateway.errors import Conflict, NotFound
from llm_gateway.services.staff import audit


async def get_any_dialog(session: AsyncSession, dialog_id: uuid.UUID) -> Dialog:
    """Any user's dialog, soft-deleted ones included, or NOT_FOUND."""
    dialog = await session.get(Dialog, dialog_id)
    if dialog is None:
        raise NotFound("Dialog not found.", id=str(dialog_id))
    return dialog


async def get_message(
    session: AsyncSession, dialog_id: uuid.UUID, message_id: uuid.UUID, *, lock: bool = False
) -> Message:
    """One message of the dialog, or NOT_FOUND; ``lock`` takes its row lock."""
    query = select(Message).where(Message.id == message_id, Message.dialog_id == dialog_id)
    message = await session.scalar(query.with_for_update() if lock else query)
    if message is None:
        raise NotFound("Message not found.", id=str(message_id))
    return message


async def message_counts(
    session: AsyncSession, dialog_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, int]:
    """How many messages each dialog holds, in one statement (absent: none)."""
    if not dialog_ids:
        return {}
    rows = await session.execute(
        select(Message.dialog_id, func.count())
        .where(Message.dialog_id.in_(dialog_ids))
        .group_by(Message.dialog_id)
    )
    return {dialog_id: int(count) for dialog_id, count in rows}


async def delete_dialog(session: AsyncSession, actor: audit.Actor, dialog_id: uuid.UUID) -> Dialog:
    """Soft-delete any user's live dialog; audited as ``dialog.delete``."""
    dialog = await session.scalar(select(Dialog).where(Dialog.id == dialog_id).with_for_update())
    if dialog is None:
        raise NotFound("Dialog not found.", id=str(dialog_id))
    if dialog.deleted_at is not None:
        raise Conflict("This dialog is already deleted.", id=str(dialog_id))
    dialog.deleted_at = utcnow()
    await session.flush()
    await audit.record(
        session,
        actor,
        "dialog.delete",
        "dialog",
        str(dialog.id),
        before={"user_id": dialog.user_id, "title": dialog.title, "deleted_at": None},
        after={"deleted_at": dialog.deleted_at.isoformat()},
    )
    return dialog


def _summary(message: Message) -> dict[str, Any]:
    """What the audit log keeps of a deleted message: never its text."""
    return {
        "dialog_id": str(message.dialog_id),
        "user_id": message.user_id,
        "role": message.role,
        "status": message.status,
        "content_length": len(message.content),
        "charged_tokens": message.charged_tokens,
    }


async def delete_message(
    session: AsyncSession, actor: audit.Actor, dialog_id: uuid.UUID, message_id: uuid.UUID
) -> Message:
    """Remove one message of a dialog; audited as ``message.delete``.

    Refused (CONFLICT) while the message, or an answer to it, is still being generated:
    the generation would finish against a missing row. The row lock taken here is the one
    a generation's finish takes, so a finish cannot slip in between the check and the
    delete. Replies to the deleted message move up to its parent (README: branches).
    """
    message = await get_message(session, dialog_id, message_id, lock=True)
    if message.status == MessageStatus.STREAMING:
        raise Conflict(
            "This message is still being generated. Wait for it to finish (or cancel it), "
            "then delete it.",
            id=str(message_id),
        )
    answering = await session.scalar(
        select(Message.id)
        .where(Message.parent_id == message.id, Message.status == MessageStatus.STREAMING)
        .limit(1)
    )
    if answering is not None:
        raise Conflict(
            "An answer to this message is still being generated. Wait for it to finish "
            "(or cancel it), then delete the message.",
            id=str(message_id),
        )
    before = _summary(message)
    # Its replies move up to its parent, so the branch stays whole without it; if it
    # was the dialog's active leaf, its parent is (None: the newest message is).
    await session.execute(
        update(Message)
        .where(Message.parent_id == message.id)
        .values(parent_id=message.parent_id)
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        update(Dialog)
        .where(Dialog.id == message.dialog_id, Dialog.active_leaf_id == message.id)
        .values(active_leaf_id=message.parent_id, updated_at=Dialog.updated_at)
        .execution_options(synchronize_session=False)
    )
    await session.delete(message)
    await session.flush()
    await audit.record(
        session, actor, "message.delete", "message", str(message_id), before=before, after=None
    )
    return message
