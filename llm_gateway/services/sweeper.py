"""Releases holds whose lease expired: their generation's process died or lost track."""

from __future__ import annotations

import asyncio
import logging

from llm_gateway.db.engine import Database
from llm_gateway.services import balances, notifications
from llm_gateway.services.events import Broker

logger = logging.getLogger("llm_gateway.sweeper")


async def sweep_once(db: Database, broker: Broker) -> int:
    """Release every expired hold, each in its own transaction; return how many."""
    async with db.read() as session:
        expired = await balances.expired_holds(session)
    released = 0
    for reservation_id in expired:
        async with db.transaction() as session:
            user_id = await balances.release_expired(session, reservation_id)
        if user_id is not None:
            released += 1
            await notifications.balance_changed(broker, user_id, "released")
    if released:
        logger.warning("released %d expired holds", released)
    return released


async def run_sweeper(db: Database, broker: Broker, interval_seconds: float) -> None:
    """Sweep forever (cancel to stop); a failed sweep is logged and retried next time."""
    while True:
        try:
            await sweep_once(db, broker)
        except Exception:
            logger.exception("sweep failed")
        await asyncio.sleep(interval_seconds)
