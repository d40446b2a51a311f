"""The audit log: one row per staff action, in the same transaction as the change."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from llm_gateway.db.models import AuditLog

SECRET_MASK = "••••••"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who did it, from where: the staff member and the request they sent."""

    user_id: int | None
    """None only for an attempt by someone unknown (a failed admin sign-in)."""
    ip_address: str | None = None
    user_agent: str | None = None
    request_id: str | None = None


async def record(
    session: AsyncSession,
    actor: Actor,
    action: str,
    resource_type: str,
    resource_id: str | int | None,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditLog:
    row = AuditLog(
        actor_id=actor.user_id,
        action=action,
        resource_type=resource_type,
        resource_id=None if resource_id is None else str(resource_id),
        before=before,
        after=after,
        ip_address=(actor.ip_address or None) and actor.ip_address[:45],
        user_agent=(actor.user_agent or None) and actor.user_agent[:500],
        request_id=actor.request_id,
    )
    session.add(row)
    await session.flush()
    return row
