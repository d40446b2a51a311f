"""A message as it travels on the broker, so subscribers need not read it back.

Events that end or start an answer carry the message's public columns. A subscriber builds a
detached ``Message`` from them instead of a database round trip per event. An event without
them (from an older instance, or the sweeper) still works: the subscriber reads the row.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from llm_gateway.db.models import Message

_PLAIN = (
    "user_id",
    "role",
    "content",
    "status",
    "model_name",
    "prompt_tokens",
    "completion_tokens",
    "charged_tokens",
    "error_code",
    "error_message",
    "ttft_ms",
    "total_ms",
)
_LATER = ("cache_read_tokens", "cache_write_tokens", "reasoning_tokens")
"""Columns an older instance's payload may lack: read as null then."""


def message_payload(row: Message) -> dict[str, Any]:
    """The columns a subscriber shows, as JSON-safe values."""
    return {
        "id": str(row.id),
        "dialog_id": str(row.dialog_id),
        "parent_id": str(row.parent_id) if row.parent_id else None,
        "cost_usd": str(row.cost_usd) if row.cost_usd is not None else None,
        "created_at": row.created_at.isoformat(),
        "completed_at": row.completed_at.isoformat() if row.completed_at else None,
        **{name: getattr(row, name) for name in (*_PLAIN, *_LATER)},
    }


def message_of(payload: Any) -> Message | None:
    """A detached Message from a payload, or None when there is none (or it is malformed)."""
    if not isinstance(payload, dict):
        return None
    try:
        return Message(
            id=uuid.UUID(payload["id"]),
            dialog_id=uuid.UUID(payload["dialog_id"]),
            parent_id=uuid.UUID(payload["parent_id"]) if payload["parent_id"] else None,
            cost_usd=Decimal(payload["cost_usd"]) if payload["cost_usd"] is not None else None,
            created_at=dt.datetime.fromisoformat(payload["created_at"]),
            completed_at=(
                dt.datetime.fromisoformat(payload["completed_at"])
                if payload["completed_at"]
                else None
            ),
            **{name: payload[name] for name in _PLAIN},
            **{name: payload.get(name) for name in _LATER},
        )
    except (KeyError, TypeError, ValueError, ArithmeticError):
        return None
