"""Per-operation DataLoaders: every relation a client can traverse is batched here.

Each batch opens its own read session, because Strawberry resolves sibling fields
concurrently and a session must never be shared between tasks.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import TYPE_CHECKING, TypeVar

from aiodataloader import DataLoader

from llm_gateway.services.catalog import listing as catalog
from llm_gateway.services.chat import branches, dialog_usage, dialogs
from llm_gateway.services.plumbing.pagination import Page
from llm_gateway.services.staff import reports

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from llm_gateway.db.engine import Database
    from llm_gateway.db.models import Agent, Message, Model

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def _loader(
    db: Database, fetch: Callable[[AsyncSession, Sequence[K]], Awaitable[dict[K, V]]]
) -> DataLoader[K, V | None]:
    async def batch(keys: list[K]) -> list[V | None]:
        async with db.read() as session:
            found = await fetch(session, keys)
        return [found.get(key) for key in keys]

    loader: DataLoader[K, V | None] = DataLoader(batch)
    return loader


class Loaders:
    def __init__(self, db: Database) -> None:
        self.model_by_id: DataLoader[int, Model | None] = _loader(db, catalog.models_by_ids)
        self.agent_by_id: DataLoader[int, Agent | None] = _loader(db, catalog.agents_by_ids)
        self.last_message_by_dialog: DataLoader[uuid.UUID, Message | None] = _loader(
            db, dialogs.last_messages
        )
        self.siblings: DataLoader[branches.SiblingKey, list[uuid.UUID] | None] = _loader(
            db, branches.sibling_ids
        )
        self.dialog_messages: DataLoader[reports.MessagePageKey, Page[Message] | None] = _loader(
            db, reports.message_pages
        )
        self.dialog_usage: DataLoader[uuid.UUID, dialog_usage.DialogTotals | None] = _loader(
            db, dialog_usage.totals_of_dialogs
        )
