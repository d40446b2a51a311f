"""How an API request ends: settle or release its hold and store its record, in one
transaction, with the chat's rules (README "How it ends")."""

from __future__ import annotations

import logging
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from llm_gateway.db.base import utcnow
from llm_gateway.db.models import ApiRequest
from llm_gateway.enums import MessageStatus
from llm_gateway.errors import Conflict, NotFound
from llm_gateway.observability.metrics import GatewayMetrics
from llm_gateway.services.chat.completions.records import Result, ToolCallResult
from llm_gateway.services.chat.generation.answer_counts import answer_record, count_after_commit
from llm_gateway.services.chat.generation.outcomes import Outcome, usage_of
from llm_gateway.services.chat.planning import GenerationJob
from llm_gateway.services.money import holds
from llm_gateway.services.money.holds import Settlement

logger = logging.getLogger("llm_gateway.api")


async def finish(
    session: AsyncSession,
    job: GenerationJob,
    outcome: Outcome,
    *,
    tool_calls: tuple[ToolCallResult, ...],
    finish_reason: str | None,
    created: int,
    keep_response: bool,
    metrics: GatewayMetrics,
) -> Result:
    """Charge what was produced (at most the hold) or release it, and record the end.

    Idempotent: a request that already ended returns its stored result (counted in
    ``metrics`` only the first time).
    """
    row = await session.scalar(
        select(ApiRequest).where(ApiRequest.id == job.message_id).with_for_update()
    )
    if row is None:
        raise NotFound("API request not found.", id=str(job.message_id))
    if row.status != MessageStatus.STREAMING:  # ended already (the sweeper got there first)
        return _stored(row, created)
    now = utcnow()
    produced = bool(outcome.text) or bool(tool_calls) or outcome.usage is not None
    written = outcome.text + "".join(call.name + call.arguments for call in tool_calls)
    usage = usage_of(outcome, job.prompt_tokens, written)
    settlement: Settlement | None = None
    if produced:
        try:
            settlement = await holds.settle(
                session,
                job.reservation_id,
                outcome.pricing,
                usage,
                now=now,
            )
        except Conflict:
            logger.error("hold %s was released before settlement", job.reservation_id)
    else:
        await holds.release(session, job.reservation_id, now=now)
    count_after_commit(
        session,
        metrics,
        answer_record("api", outcome, settlement, usage),
    )
    charged = settlement.charged if settlement else 0
    result = Result(
        request_id=f"chatcmpl-{job.message_id.hex}",
        created=created,
        model=outcome.model_name,
        status=outcome.status,
        text=outcome.text,
        tool_calls=tool_calls,
        finish_reason=finish_reason,
        prompt_tokens=usage.prompt_tokens if produced else 0,
        completion_tokens=usage.completion_tokens if produced else 0,
        cache_read_tokens=usage.cache_read_tokens if produced else 0,
        reasoning_tokens=(usage.reasoning_tokens or 0) if produced else 0,
        charged_tokens=charged,
        error_code=outcome.error_code,
        error_message=outcome.error_message,
    )
    row.status = outcome.status
    row.model_name = outcome.model_name
    row.prompt_tokens = usage.prompt_tokens
    row.completion_tokens = usage.completion_tokens if produced else 0
    row.cache_read_tokens = usage.cache_read_tokens if produced else None
    row.cache_write_tokens = usage.cache_write_tokens if produced else None
    row.reasoning_tokens = usage.reasoning_tokens if produced else None
    row.charged_tokens = charged
    row.cost_usd = settlement.cost_usd if settlement else Decimal(0)
    row.error_code = outcome.error_code
    row.error_message = outcome.error_message
    row.ttft_ms = outcome.ttft_ms
    row.total_ms = outcome.total_ms
    row.completed_at = now
    if not charged and not result.ok:
        row.idempotency_key = None  # nothing happened that a repeat could double
    if keep_response or row.idempotency_key is not None:
        row.response = result.to_json()
    await session.flush()
    return result


def _stored(row: ApiRequest, created: int) -> Result:
    if row.response is not None:
        return Result.from_json(row.response)
    return Result(
        request_id=f"chatcmpl-{row.id.hex}",
        created=created,
        model=row.model_name,
        status=row.status,
        prompt_tokens=row.prompt_tokens or 0,
        completion_tokens=row.completion_tokens or 0,
        cache_read_tokens=row.cache_read_tokens or 0,
        reasoning_tokens=row.reasoning_tokens or 0,
        charged_tokens=row.charged_tokens or 0,
        error_code=row.error_code,
        error_message=row.error_message,
    )
