"""Build real rows through the services, the way the application does."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from llm_gateway.db.base import utcnow
from llm_gateway.db.engine import Database
from llm_gateway.db.models import Message
from llm_gateway.services.chat import dialogs


def database_of(app: Any) -> Database:
    db: Database = app.state.services.db
    return db


async def create_dialog(app: Any, owner: int, **draft: Any) -> uuid.UUID:
    async with database_of(app).transaction() as session:
        dialog = await dialogs.create_dialog(
            session, owner, dialogs.DialogDraft(**draft), max_content=100_000
        )
        return dialog.id


async def add_message(
    app: Any,
    dialog_id: uuid.UUID,
    owner: int,
    content: str,
    *,
    role: str = "user",
    at: dt.datetime | None = None,
) -> uuid.UUID:
    """A stored message; the chat flow (a later issue) will write these itself."""
    async with database_of(app).transaction() as session:
        message = Message(
            dialog_id=dialog_id,
            user_id=owner,
            role=role,
            content=content,
            status="complete",
            created_at=at or utcnow(),
        )
        session.add(message)
        await session.flush()
        return message.id
