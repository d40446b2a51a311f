"""Channel names and the events other instances and subscribers listen for."""

from __future__ import annotations

from llm_gateway.services.plumbing.broker import Broker


def balance_channel(user_id: int) -> str:
    return f"balance:{user_id}"


async def balance_changed(broker: Broker, user_id: int, reason: str) -> None:
    """Tell subscribers a balance moved (call after the commit that moved it)."""
    await broker.publish(balance_channel(user_id), {"userId": user_id, "reason": reason})
