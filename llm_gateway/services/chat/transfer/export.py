"""Export of a user's own dialogs as JSON (format 3.0, in the spirit of the previous
service's 1.0: the same top-level keys, ``model_name``, params under ``agent_config``).

3.0 added the message tree: each message's ``id`` and ``parent_id`` (an earlier message
of the list, oldest first) and each dialog's ``active_message_id``."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from llm_gateway.db.base import utcnow
from llm_gateway.db.models import Dialog, Message
from llm_gateway.errors import NotFound, ValidationFailed
from llm_gateway.services.catalog import listing as catalog

FORMAT_VERSION = "3.0"
MAX_EXPORT_DIALOGS = 500
MAX_EXPORT_MESSAGES = 20_000
MAX_EXPORT_CHARACTERS = 50_000_000


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds")


def _agent_config(dialog: Dialog) -> dict[str, Any] | None:
    values = {
        "temperature": dialog.temperature,
        "top_p": dialog.top_p,
        "max_tokens": dialog.max_tokens,
        "stop": dialog.stop,
    }
    config = {key: value for key, value in values.items() if value is not None}
    return config or None


def _export_message(row: Message) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "parent_id": str(row.parent_id) if row.parent_id is not None else None,
        "role": row.role,
        "content": row.content,
        "status": row.status,
        "model_name": row.model_name,
        "prompt_tokens": row.prompt_tokens,
        "completion_tokens": row.completion_tokens,
        "created_at": _iso(row.created_at),
    }


async def export_dialogs(
    session: AsyncSession, owner_id: int, ids: Sequence[uuid.UUID] | None
) -> dict[str, Any]:
    """The owner's live dialogs (all, or exactly ``ids``), newest activity first.

    Someone else's or a deleted dialog among ``ids`` is NOT_FOUND, like a missing one.
    An export too large for one response is refused with a hint to pass ``ids``.
    """
    live = (Dialog.user_id == owner_id, Dialog.deleted_at.is_(None))
    scope = select(Dialog).where(*live)
    if ids is not None:
        wanted = list(dict.fromkeys(ids))
        if len(wanted) > MAX_EXPORT_DIALOGS:
            raise ValidationFailed(
                f"Export at most {MAX_EXPORT_DIALOGS} dialogs at a time.",
                field="ids",
                maximum=MAX_EXPORT_DIALOGS,
            )
        scope = scope.where(Dialog.id.in_(wanted))
    rows = (
        await session.scalars(
            scope.order_by(Dialog.updated_at.desc(), Dialog.id.desc()).limit(MAX_EXPORT_DIALOGS + 1)
        )
    ).all()
    if ids is not None:
        found = {row.id for row in rows}
        missing = next((i for i in wanted if i not in found), None)
        if missing is not None:
            raise NotFound("Dialog not found.", id=str(missing))
    if len(rows) > MAX_EXPORT_DIALOGS:
        raise ValidationFailed(
            f"You have more than {MAX_EXPORT_DIALOGS} dialogs; export them in parts with ids.",
            field="ids",
            maximum=MAX_EXPORT_DIALOGS,
        )
    dialog_ids = [row.id for row in rows]
    in_scope = Message.dialog_id.in_(dialog_ids)
    count, characters = (
        await session.execute(
            select(
                func.count(Message.id), func.coalesce(func.sum(func.length(Message.content)), 0)
            ).where(in_scope)
        )
    ).one()
    if count > MAX_EXPORT_MESSAGES or characters > MAX_EXPORT_CHARACTERS:
        raise ValidationFailed(
            f"These dialogs hold {count} messages ({characters} characters); one export takes "
            f"at most {MAX_EXPORT_MESSAGES} messages and {MAX_EXPORT_CHARACTERS} characters. "
            "Export them in parts with ids.",
            field="ids",
        )
    messages: dict[uuid.UUID, list[dict[str, Any]]] = {dialog_id: [] for dialog_id in dialog_ids}
    if dialog_ids:
        for message in await session.scalars(
            select(Message).where(in_scope).order_by(Message.created_at, Message.id)
        ):
            messages[message.dialog_id].append(_export_message(message))
    models = await catalog.models_by_ids(session, list({row.model_id for row in rows}))
    return {
        "version": FORMAT_VERSION,
        "exported_at": _iso(utcnow()),
        "user_id": owner_id,
        "dialog_count": len(rows),
        "message_count": count,
        "dialogs": [
            {
                "id": str(row.id),
                "title": row.title,
                "system_prompt": row.system_prompt,
                "model_name": models[row.model_id].name,
                "agent_config": _agent_config(row),
                "created_at": _iso(row.created_at),
                "updated_at": _iso(row.updated_at),
                "active_message_id": str(row.active_leaf_id) if row.active_leaf_id else None,
                "messages": messages[row.id],
            }
            for row in rows
        ],
    }
