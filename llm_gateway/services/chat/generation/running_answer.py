"""An answer while this process generates it: its state (``Running``), its text sent to
subscribers as numbered deltas, and its outcome when it does not complete."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from llm_gateway.enums import MessageStatus
from llm_gateway.providers.base import StreamEvent
from llm_gateway.services.chat.generation.outcomes import Outcome
from llm_gateway.services.chat.planning import GenerationJob, Target
from llm_gateway.services.plumbing import broker_events as wire
from llm_gateway.services.plumbing.broker import Broker


@dataclass(slots=True)
class Running:
    """A generation in this process: its job, its task, the text so far."""

    job: GenerationJob
    task: asyncio.Task[None] | None = None
    parts: list[str] = field(default_factory=list)
    unpublished: int = 0  # trailing parts not yet sent to subscribers (coalescing)
    seq: int = 0
    stop_reason: str | None = None  # "cancel" or "shutdown" when we stop it ourselves
    finish_reason: str | None = None  # the provider's, once it said why the reply ended
    current: Target | None = None
    finishing: bool = False
    listener: Callable[[StreamEvent], None] | None = None
    """An API request's reader of every event (then nothing is published or saved partway)."""
    tool_output: bool = False
    accepted: float | None = None
    """When its request arrived (``time.monotonic()``), until the gateway's overhead is counted."""

    @property
    def text(self) -> str:
        return "".join(self.parts)

    @property
    def has_output(self) -> bool:
        """Whether anything reached the client: from then on nothing is retried."""
        return bool(self.parts) or self.tool_output

    @property
    def published_text(self) -> str:
        """What subscribers have been sent, through delta ``seq``."""
        return "".join(self.parts[: len(self.parts) - self.unpublished])

    def take_unpublished(self) -> str:
        text = "".join(self.parts[len(self.parts) - self.unpublished :])
        self.unpublished = 0
        return text

    def target(self) -> Target | None:
        """The target being (or last) tried, else the first one."""
        return self.current or (self.job.targets[0] if self.job.targets else None)


def ended(
    running: Running,
    target: Target | None,
    *,
    status: MessageStatus,
    code: str,
    message: str,
    timing: dict[str, int],
    started: float,
) -> Outcome:
    """The outcome of an answer that did not complete, with the text it has so far."""
    target = target or running.target()
    assert target is not None
    return Outcome(
        status=status,
        text=running.text,
        model_name=target.model_name,
        provider=target.provider,
        pricing=target.pricing,
        error_code=code,
        error_message=message,
        ttft_ms=timing.get("ttft"),
        total_ms=ms_since(started),
    )


async def publish_deltas(broker: Broker, running: Running) -> None:
    """Send the text not yet sent as one numbered delta."""
    text = running.take_unpublished()
    job = running.job
    if text and job.dialog_id is not None:  # an API request has no subscribers
        running.seq += 1
        # Live delivery only: a delta the broker cannot take is dropped, the answer goes on.
        await broker.send(wire.MessageDelta(job.dialog_id, job.message_id, running.seq, text))


def ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
