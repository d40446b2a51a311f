"""An answer's end, counted in the metrics once the unit of work that stored it committed.

Counted with ``after_commit``: an end that rolls back (and is retried, or recovered later
by the sweeper) is never counted, and the finish paths are idempotent, so each answer is
counted once, and the charged tokens are exactly the ``usage`` rows the ledger got.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from llm_gateway.db.engine import after_commit
from llm_gateway.observability.metrics import AnswerRecord, GatewayMetrics
from llm_gateway.providers.base import Usage
from llm_gateway.services.money.holds import Settlement

if TYPE_CHECKING:
    from llm_gateway.services.chat.generation.outcomes import Outcome


def answer_record(
    source: str,
    outcome: Outcome,
    settlement: Settlement | None,
    usage: Usage,
) -> AnswerRecord:
    """How an answer ended: settled (its usage row's amounts) or not charged."""
    return AnswerRecord(
        source=source,
        model=outcome.model_name,
        provider=outcome.provider,
        status=outcome.status,
        charged_tokens=settlement.charged if settlement else 0,
        cost_usd=settlement.cost_usd if settlement else Decimal(0),
        input_tokens=usage.prompt_tokens if settlement else None,
        output_tokens=usage.completion_tokens if settlement else None,
        cache_read_tokens=usage.cache_read_tokens,
        cache_write_tokens=usage.cache_write_tokens,
        reasoning_tokens=usage.reasoning_tokens or 0,
        ttft_ms=outcome.ttft_ms,
        total_ms=outcome.total_ms,
    )


def count_after_commit(
    session: AsyncSession, metrics: GatewayMetrics, answer: AnswerRecord
) -> None:
    """Count ``answer`` once ``session``'s transaction has committed, never before."""

    async def count() -> None:
        metrics.answer_ended(answer)

    after_commit(session, count)
