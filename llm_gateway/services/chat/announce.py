"""What a send does once it is committed: announce the answer and start it, or announce
that it was refused.

Registered on the unit of work (``after_commit``), so nothing is announced or started for
a send that rolled back, and "started" always goes out before the generation's first delta.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from llm_gateway.db.engine import after_commit
from llm_gateway.services.chat.message_wire import message_payload
from llm_gateway.services.plumbing import broker_events as wire
from llm_gateway.services.plumbing.broker import Broker

if TYPE_CHECKING:
    from llm_gateway.services.chat.generation.runner import GenerationManager
    from llm_gateway.services.chat.sending import SendResult


def after_send(
    session: AsyncSession,
    broker: Broker,
    generations: GenerationManager,
    result: SendResult,
    accepted: float | None = None,
) -> None:
    """Register the send's effects: started + launch, or the refusal's failed event (and
    its count in the metrics). ``accepted``: when the send arrived (``time.monotonic()``)."""
    assistant = result.assistant_message
    job, refusal = result.job, result.refusal
    if job is not None:

        async def start() -> None:
            await broker.send(
                wire.MessageStarted(assistant.dialog_id, assistant.id, message_payload(assistant))
            )
            generations.launch(job, accepted)

        after_commit(session, start)
    elif refusal is not None:

        async def refused() -> None:
            generations.metrics.hold_refused(refusal.code)
            await broker.send(
                wire.MessageFailed(
                    assistant.dialog_id,
                    assistant.id,
                    refusal.code,
                    refusal.message,
                    message_payload(assistant),
                )
            )

        after_commit(session, refused)
