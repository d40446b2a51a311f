"""Finishes generations whose hold expired: their process died or lost track of them."""

from __future__ import annotations

import asyncio
import logging

from llm_gateway.db.engine import Database
from llm_gateway.observability.metrics import GatewayMetrics
from llm_gateway.services.chat.generation import outcomes
from llm_gateway.services.money import holds
from llm_gateway.services.plumbing.broker import Broker
from llm_gateway.services.plumbing.broker_events import BalanceChanged, MessageFailed

logger = logging.getLogger("llm_gateway.sweeper")


async def sweep_once(
    db: Database, broker: Broker, metrics: GatewayMetrics, *, instance_id: str | None = None
) -> int:
    """Recover every expired hold (and, with ``instance_id``, every hold of that instance).

    Each in its own transaction: the message becomes ``interrupted``, charged for the text
    that was saved, or the hold is released (answers so ended are counted in ``metrics``).
    Returns how many were recovered.
    """
    async with db.read() as session:
        expired = await holds.expired_holds(session, instance_id=instance_id)
    recovered = 0
    for reservation_id in expired:
        async with db.transaction() as session:
            result = await outcomes.recover_orphan(
                session, reservation_id, metrics=metrics, instance_id=instance_id
            )
        if result is None:
            continue
        recovered += 1
        user_id, dialog_id = result
        await broker.send(BalanceChanged(user_id, "released"))
        if dialog_id is not None:
            async with db.read() as session:
                message_id = await outcomes.message_of_reservation(session, reservation_id)
            if message_id is not None:
                # Without the row: subscribers read the recovered message back.
                await broker.send(
                    MessageFailed(
                        dialog_id,
                        message_id,
                        "INTERRUPTED",
                        "The server stopped before the answer was finished.",
                    )
                )
    if recovered:
        logger.warning("recovered %d orphaned generations", recovered)
    return recovered


async def run_sweeper(
    db: Database, broker: Broker, interval_seconds: float, metrics: GatewayMetrics
) -> None:
    """Sweep forever (cancel to stop); a failed sweep is logged and retried next time."""
    while True:
        try:
            await sweep_once(db, broker, metrics)
        except Exception:
            logger.exception("sweep failed")
        await asyncio.sleep(interval_seconds)
