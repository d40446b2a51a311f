"""Build real rows through the services, the way the application does."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import update

from llm_gateway.db.base import utcnow
from llm_gateway.db.engine import Database
from llm_gateway.db.models import Dialog, Message, Model
from llm_gateway.services.chat import branches, dialogs


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
    """A stored message at the end of the dialog's active branch, which it then ends
    (as the chat flow appends them, without a generation)."""
    async with database_of(app).transaction() as session:
        dialog = await session.get(Dialog, dialog_id)
        assert dialog is not None
        message = Message(
            dialog_id=dialog_id,
            user_id=owner,
            role=role,
            content=content,
            status="complete",
            parent_id=await branches.current_leaf(session, dialog),
            created_at=at or utcnow(),
        )
        session.add(message)
        await session.flush()
        dialog.active_leaf_id = message.id
        return message.id


# The prices the caching tests' arithmetic is written in: claude-3-opus and gpt-4-turbo as
# 0002 seeded them, with their providers' 2024 cache ratios (Anthropic 0.1x read, 1.25x
# write; OpenAI 0.5x read). The catalog migration (0008) points both names at current
# models with other prices; these tests are about the arithmetic, not the catalog.
WORKED_PRICES = {
    "claude-3-opus": ("0.015", "0.075", "0.0015", "0.01875", "0.1", "1.25"),
    "gpt-4-turbo": ("0.01", "0.03", "0.005", "0.01", "0.5", "1"),
}


async def price_for_worked_examples(app: Any) -> None:
    """Give claude-3-opus and gpt-4-turbo the prices in ``WORKED_PRICES``."""
    async with database_of(app).transaction() as session:
        for name, (prompt, completion, read, write, read_w, write_w) in WORKED_PRICES.items():
            await session.execute(
                update(Model)
                .where(Model.name == name)
                .values(
                    prompt_price_per_1k=Decimal(prompt),
                    completion_price_per_1k=Decimal(completion),
                    cache_read_price_per_1k=Decimal(read),
                    cache_write_price_per_1k=Decimal(write),
                    prompt_weight=Decimal(1),
                    completion_weight=Decimal(1),
                    cache_read_weight=Decimal(read_w),
                    cache_write_weight=Decimal(write_w),
                )
            )
