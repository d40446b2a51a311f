"""When each API key was last used: kept in memory, written now and then in one statement.

A request must not cost a write, so ``record`` only notes the time; ``flush`` (every
``FLUSH_SECONDS`` from the lifespan, and once more at shutdown) moves ``last_used_at``
forward for every key used since the previous flush.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid
from collections.abc import Mapping
from typing import cast

from sqlalchemy import Table, bindparam, or_, update
from sqlalchemy.ext.asyncio import AsyncSession

from llm_gateway.db.base import UTCDateTime
from llm_gateway.db.engine import Database
from llm_gateway.db.models import ApiKey

logger = logging.getLogger("llm_gateway.api_keys")

FLUSH_SECONDS = 10.0


class LastUsed:
    """The keys used on this instance since the last flush, each with its latest time."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._pending: dict[uuid.UUID, dt.datetime] = {}

    def record(self, key_id: uuid.UUID, at: dt.datetime) -> None:
        known = self._pending.get(key_id)
        if known is None or at > known:
            self._pending[key_id] = at

    @property
    def pending(self) -> int:
        """How many keys wait for the next flush."""
        return len(self._pending)

    async def flush(self) -> None:
        """Write what was recorded (one statement). On a failure the times are kept for
        the next flush, and the error is raised."""
        if not self._pending:
            return
        batch, self._pending = self._pending, {}
        try:
            async with self._db.transaction() as session:
                await write_last_used(session, batch)
        except BaseException:
            for key_id, at in batch.items():
                self.record(key_id, at)
            raise

    async def run(self, interval: float = FLUSH_SECONDS) -> None:
        """Flush every ``interval`` seconds (cancel to stop; flush once more after that)."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.flush()
            except Exception:
                logger.exception("could not record when API keys were last used; retrying")


async def write_last_used(session: AsyncSession, used: Mapping[uuid.UUID, dt.datetime]) -> None:
    """Move each key's ``last_used_at`` forward to its time in ``used``: one statement
    (executed for many rows), never backwards (another instance may have written later)."""
    if not used:
        return
    table = cast(Table, ApiKey.__table__)
    at = bindparam("used_at", type_=UTCDateTime())
    statement = (
        update(table)
        .where(
            table.c.id == bindparam("key_id"),
            or_(table.c.last_used_at.is_(None), table.c.last_used_at < at),
        )
        .values(last_used_at=at)
    )
    await session.execute(
        statement, [{"key_id": key_id, "used_at": moment} for key_id, moment in used.items()]
    )
