"""One API request's upstream stream, in a task of its own, read through a queue.

The task asks the chat's ``Upstream`` (retries before the first token, the fallback,
timeouts) with a listener instead of the broker, keeps its hold's lease alive with the
generations' heartbeat, and always ends by settling through ``finishing``, also when it is
stopped: the client went away (``cancelled``) or the server is stopping (``interrupted``),
both charged for what was produced. Its last queue item is the stored ``Result``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from llm_gateway.db.engine import Database
from llm_gateway.enums import MessageStatus
from llm_gateway.providers.base import Finish, StreamEvent, TextDelta, ToolCallDelta
from llm_gateway.services.chat.completions import finishing
from llm_gateway.services.chat.completions.records import Result, ToolCallResult
from llm_gateway.services.chat.generation.outcomes import Outcome
from llm_gateway.services.chat.generation.runner import GenerationManager
from llm_gateway.services.chat.generation.running_answer import Running
from llm_gateway.services.chat.generation.spans import record_outcome, traced
from llm_gateway.services.chat.planning import GenerationJob
from llm_gateway.services.plumbing.broker import Broker
from llm_gateway.services.plumbing.broker_events import BalanceChanged

logger = logging.getLogger("llm_gateway.api")

FINISH_ATTEMPTS = 3
StopReason = str  # "disconnect" | "shutdown"

Item = TextDelta | ToolCallDelta | Finish | Result


@dataclass(slots=True)
class _ToolCall:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


class CompletionRun:
    """A started completion; iterate it for its events, ``stop`` it to end it early.

    ``accepted``: when its request arrived (``time.monotonic()``), for the overhead metric.
    """

    def __init__(
        self,
        db: Database,
        generations: GenerationManager,
        broker: Broker,
        job: GenerationJob,
        *,
        keep_response: bool,
        accepted: float | None = None,
    ) -> None:
        self._db = db
        self._generations = generations
        self._broker = broker
        self.job = job
        self.created = int(time.time())
        self._keep_response = keep_response
        self._queue: asyncio.Queue[Item] = asyncio.Queue()
        self._calls: dict[int, _ToolCall] = {}
        self._finish_reason: str | None = None
        self._running = Running(job, listener=self._on_event, accepted=accepted)
        self._task = asyncio.create_task(self._run(), name=f"completion-{job.message_id}")
        self.result: Result | None = None

    def _on_event(self, event: StreamEvent) -> None:
        if isinstance(event, ToolCallDelta):
            call = self._calls.setdefault(event.index, _ToolCall())
            call.id = event.id or call.id
            call.name = event.name or call.name
            call.arguments.append(event.arguments)
        elif isinstance(event, Finish):
            self._finish_reason = event.reason
        if isinstance(event, TextDelta | ToolCallDelta | Finish):
            self._queue.put_nowait(event)

    async def events(self) -> AsyncIterator[Item]:
        """Every event as it comes, the ``Result`` last."""
        while True:
            item = await self._queue.get()
            yield item
            if isinstance(item, Result):
                return

    async def outcome(self) -> Result:
        """Wait for the end (non-streamed requests)."""
        await asyncio.shield(self._task)
        assert self.result is not None
        return self.result

    async def stop(self, reason: StopReason) -> None:
        """End it now (charged for what was produced) and wait until it is stored."""
        if not self._task.done() and not self._running.finishing:
            self._running.stop_reason = reason
            self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(self._task)

    async def _run(self) -> None:
        running = self._running
        with (
            self._generations.keep_alive(self.job.reservation_id),
            traced(self._generations.spans, running) as record,
        ):
            outcome = await self._generations.generate(
                running,
                "api",
                "disconnect",
                ("CLIENT_DISCONNECTED", "The client closed the connection."),
            )
            record_outcome(record, running, outcome)
            running.finishing = True
            calls = tuple(
                ToolCallResult(c.id, c.name, "".join(c.arguments))
                for _, c in sorted(self._calls.items())
            )
            self.result = await self._store(outcome, calls)
        self._queue.put_nowait(self.result)
        await self._broker.send(BalanceChanged(self.job.user_id, "usage"))

    async def _store(self, outcome: Outcome, calls: tuple[ToolCallResult, ...]) -> Result:
        for attempt in range(FINISH_ATTEMPTS):
            try:
                async with self._db.transaction() as session:
                    return await finishing.finish(
                        session,
                        self.job,
                        outcome,
                        tool_calls=calls,
                        finish_reason=self._finish_reason,
                        created=self.created,
                        keep_response=self._keep_response,
                        metrics=self._generations.metrics,
                    )
            except Exception:
                logger.exception(
                    "finishing API request %s failed (attempt %d)", self.job.message_id, attempt + 1
                )
                await asyncio.sleep(0.2 * (attempt + 1))
        # Not stored: the lease lapses and the sweeper releases the hold. The client still
        # gets an honest end.
        return Result(
            request_id=f"chatcmpl-{self.job.message_id.hex}",
            created=self.created,
            model=outcome.model_name,
            status=MessageStatus.FAILED,
            text=outcome.text,
            tool_calls=calls,
            error_code="SERVICE_UNAVAILABLE",
            error_message="The gateway could not record this answer; it was not charged.",
        )
