"""The stored end of an API request, and its recovery when its process died.

``Result`` is what a completion ended with, in a neutral form: ``llm_gateway.api`` renders
it as a chat completion, a stream or an error, live and for an idempotent replay alike.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from llm_gateway.db.models import ApiRequest
from llm_gateway.enums import MessageStatus

INTERRUPTED_MESSAGE = "The server stopped before the answer was finished."


@dataclass(frozen=True, slots=True)
class ToolCallResult:
    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class Result:
    """How a completion ended: what it produced, what it was charged, or why it failed."""

    request_id: str
    created: int
    model: str
    status: str
    text: str = ""
    tool_calls: tuple[ToolCallResult, ...] = ()
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cache_read_tokens: int = 0
    """Of ``prompt_tokens``, read from the provider's cache (OpenAI's ``cached_tokens``)."""
    reasoning_tokens: int = 0
    """Of ``completion_tokens``, spent reasoning."""
    charged_tokens: int = 0
    error_code: str | None = None
    error_message: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == MessageStatus.COMPLETE

    @property
    def produced(self) -> bool:
        return bool(self.text) or bool(self.tool_calls)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["tool_calls"] = [asdict(call) for call in self.tool_calls]
        return data

    @staticmethod
    def from_json(data: dict[str, Any]) -> Result:
        calls = tuple(ToolCallResult(**call) for call in data.get("tool_calls") or ())
        return Result(**{**data, "tool_calls": calls})


async def lock(session: AsyncSession, request_id: uuid.UUID) -> None:
    """Take the request's row lock: before its hold's, as ``finishing`` does."""
    await session.execute(
        select(ApiRequest.id).where(ApiRequest.id == request_id).with_for_update()
    )


async def interrupt(session: AsyncSession, request_id: uuid.UUID, now: dt.datetime) -> bool:
    """Mark a request whose process died as interrupted (its hold is released by the caller);
    False when it had ended already.

    Nothing of its output was saved, so nothing is charged: the gateway bears the loss."""
    result = await session.execute(
        update(ApiRequest)
        .where(ApiRequest.id == request_id, ApiRequest.status == MessageStatus.STREAMING)
        .values(
            status=MessageStatus.INTERRUPTED,
            error_code="INTERRUPTED",
            error_message=INTERRUPTED_MESSAGE,
            charged_tokens=0,
            completion_tokens=0,
            idempotency_key=None,
            completed_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
