"""Per-operation DataLoaders: every relation a client can traverse is batched here.

Each batch opens its own read session, because Strawberry resolves sibling fields
concurrently and a session must never be shared between tasks.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Hashable, Sequence
from functools import cached_property
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
    """The loaders of one operation, each made on its first use: most operations touch one
    or two, and a subscription, which holds its ``Loaders`` for as long as it lives, none."""

    def __init__(self, db: Database) -> None:
        self._db = db

    @cached_property
    def model_by_id(self) -> DataLoader[int, Model | None]:
        return _loader(self._db, catalog.models_by_ids)

    @cached_property
    def agent_by_id(self) -> DataLoader[int, Agent | None]:
        return _loader(self._db, catalog.agents_by_ids)

    @cached_property
    def last_message_by_dialog(self) -> DataLoader[uuid.UUID, Message | None]:
        return _loader(self._db, dialogs.last_messages)

    @cached_property
    def siblings(self) -> DataLoader[branches.SiblingKey, list[uuid.UUID] | None]:
        return _loader(self._db, branches.sibling_ids)

    @cached_property
    def dialog_messages(self) -> DataLoader[reports.MessagePageKey, Page[Message] | None]:
        return _loader(self._db, reports.message_pages)

    @cached_property
    def dialog_usage(self) -> DataLoader[uuid.UUID, dialog_usage.DialogTotals | None]:
        return _loader(self._db, dialog_usage.totals_of_dialogs)
