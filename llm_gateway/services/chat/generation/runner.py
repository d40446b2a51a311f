"""Generations run here, as tasks owned by the process, not by a request or a socket.

For each job the manager calls the provider (with retries and backoff before the first
token, then the fallback model), publishes every delta with a sequence number, saves the
partial text periodically, and finishes exactly once: settled or released, the message in
an honest final state, then one terminal event. Cancellation, timeouts and shutdown all
end in ``finish``; a crash is recovered later by the sweeper (``outcomes.recover_orphan``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from llm_gateway.db.engine import Database
from llm_gateway.errors import ServiceUnavailable
from llm_gateway.providers.base import ErrorKind, Provider, ProviderError, TextDelta, Usage
from llm_gateway.providers.registry import ProviderRegistry
from llm_gateway.services.chat.generation import outcomes
from llm_gateway.services.chat.generation.outcomes import Outcome
from llm_gateway.services.chat.message_wire import message_payload
from llm_gateway.services.chat.planning import GenerationJob, Target
from llm_gateway.services.money import balances, holds
from llm_gateway.services.plumbing import broker_events as wire
from llm_gateway.services.plumbing.broker import UNAVAILABLE_MESSAGE, Broker
from llm_gateway.settings import Settings

logger = logging.getLogger("llm_gateway.generation")

CONTROL_READY_SECONDS = 2.0
CONTROL_RETRY_SECONDS = 1.0

USER_MESSAGES = {
    ErrorKind.RATE_LIMITED: "The model is rate limited right now; please try again shortly.",
    ErrorKind.UNAVAILABLE: "The model's provider is unavailable right now.",
    ErrorKind.TIMEOUT: "The model's provider did not answer in time.",
    ErrorKind.AUTH: "The gateway could not authenticate with the model's provider.",
    ErrorKind.MODEL_NOT_FOUND: "The provider does not know this model.",
    ErrorKind.BAD_REQUEST: "The provider refused the request.",
    ErrorKind.STREAM_CUT: "The answer was cut off by the provider.",
}


@dataclass(slots=True)
class _Running:
    job: GenerationJob
    task: asyncio.Task[None] | None = None
    parts: list[str] = field(default_factory=list)
    unpublished: int = 0  # trailing parts not yet sent to subscribers (coalescing)
    seq: int = 0
    stop_reason: str | None = None  # "cancel" or "shutdown" when we stop it ourselves
    current: Target | None = None
    finishing: bool = False

    @property
    def text(self) -> str:
        return "".join(self.parts)

    @property
    def published_text(self) -> str:
        """What subscribers have been sent, through delta ``seq``."""
        return "".join(self.parts[: len(self.parts) - self.unpublished])

    def take_unpublished(self) -> str:
        text = "".join(self.parts[len(self.parts) - self.unpublished :])
        self.unpublished = 0
        return text


class _FailedAfterOutput(Exception):
    def __init__(self, error: ProviderError) -> None:
        self.error = error


class GenerationManager:
    def __init__(
        self,
        db: Database,
        broker: Broker,
        registry: ProviderRegistry,
        settings: Settings,
    ) -> None:
        self._db = db
        self._broker = broker
        self._registry = registry
        self._settings = settings
        self._policy = balances.MoneyPolicy.from_settings(settings)
        self._running: dict[uuid.UUID, _Running] = {}
        self._control: asyncio.Task[None] | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._control_ready = asyncio.Event()
        self._closing = False

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Listen for control messages (cancel, snapshot) from every instance, and keep the
        holds of this process's generations alive."""
        self._control = asyncio.create_task(self._listen(), name="generation-control")
        self._heartbeat = asyncio.create_task(self._renew_leases(), name="lease-heartbeat")
        # Normally ready at once; with the broker down the app still starts (readiness
        # reports it) and the listener keeps trying.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._control_ready.wait(), CONTROL_READY_SECONDS)

    async def shutdown(self, grace_seconds: float) -> None:
        """Let running generations finish for ``grace_seconds``, then interrupt the rest."""
        self._closing = True
        tasks = [r.task for r in self._running.values() if r.task is not None]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=grace_seconds)
            for running in list(self._running.values()):
                # One already finishing is left to finish: its final write is short.
                if running.task in pending and not running.finishing:
                    running.stop_reason = "shutdown"
                    running.task.cancel()
            if pending:
                await asyncio.wait(pending)
        for task in (self._control, self._heartbeat):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _renew_leases(self) -> None:
        """Every third of the lease, renew the holds of every generation running here.

        A hold whose lease lapses belongs to a process that died: any instance's sweeper
        recovers it. So a short lease recovers a crash quickly, and this heartbeat, one
        statement for the whole process, keeps live generations from being taken for dead
        (also while they wait for a first token, when nothing else writes).
        """
        interval = self._policy.lease.total_seconds() / 3
        while True:
            await asyncio.sleep(interval)
            ids = [r.job.reservation_id for r in self._running.values() if not r.finishing]
            if not ids:
                continue
            try:
                async with self._db.transaction() as session:
                    await holds.renew_leases(session, ids, self._policy)
            except Exception:  # the database is down: the next beat tries again
                logger.exception("could not renew the leases of %d generations", len(ids))

    def launch(self, job: GenerationJob) -> None:
        running = _Running(job)
        self._running[job.message_id] = running
        running.task = asyncio.create_task(self._run(running), name=f"generation-{job.message_id}")

    def is_running(self, message_id: uuid.UUID) -> bool:
        return message_id in self._running

    async def wait(self, message_id: uuid.UUID) -> None:
        """Until the local generation of ``message_id`` (if any) has finished."""
        running = self._running.get(message_id)
        if running is not None and running.task is not None:
            await asyncio.wait([running.task])

    async def cancel(self, message_id: uuid.UUID) -> None:
        """Stop a generation wherever it runs (this process, or another via the broker)."""
        if not self._cancel_local(message_id) and not await self._broker.send(
            wire.CancelRequest(message_id)
        ):
            raise ServiceUnavailable(UNAVAILABLE_MESSAGE)

    def _cancel_local(self, message_id: uuid.UUID) -> bool:
        running = self._running.get(message_id)
        if running is None or running.task is None:
            return False
        running.stop_reason = "cancel"
        running.task.cancel()
        return True

    async def request_snapshots(self, dialog_id: uuid.UUID) -> bool:
        """Ask whichever process runs the dialog's generations for their text so far;
        False when the request could not be sent."""
        return await self._broker.send(wire.SnapshotRequest(dialog_id))

    async def _listen(self) -> None:
        while True:
            try:
                async with self._broker.subscribe(wire.CONTROL_CHANNEL) as events:
                    self._control_ready.set()
                    async for event in events:
                        request = wire.decode_control(event)
                        try:
                            if request is not None:
                                await self._on_control(request)
                        except Exception:
                            logger.exception("control event failed: %s", event)
            except ServiceUnavailable:
                await asyncio.sleep(CONTROL_RETRY_SECONDS)  # the broker logs its own state
            except Exception:
                logger.exception("control channel unavailable; retrying")
                await asyncio.sleep(CONTROL_RETRY_SECONDS)

    async def _on_control(self, request: wire.ControlRequest) -> None:
        if isinstance(request, wire.CancelRequest):
            self._cancel_local(request.message_id)
            return
        for running in list(self._running.values()):
            job = running.job
            if job.dialog_id == request.dialog_id:
                # Published in the same order as this generation's deltas: a
                # subscriber drops the deltas it already has through ``seq``.
                await self._broker.send(
                    wire.MessageSnapshot(
                        job.dialog_id, job.message_id, running.seq, running.published_text
                    )
                )

    # -- one generation ----------------------------------------------------------------------

    async def _run(self, running: _Running) -> None:
        job = running.job
        started = time.monotonic()
        timing: dict[str, int] = {}
        target = job.targets[0] if job.targets else None
        try:
            outcome = await self._generate(running, started, timing)
        except asyncio.CancelledError:
            cancelled = running.stop_reason == "cancel"
            outcome = self._ended(
                running,
                target_of(running, target),
                status="cancelled" if cancelled else "interrupted",
                code="CANCELLED" if cancelled else "INTERRUPTED",
                message="Stopped at the user's request."
                if cancelled
                else "The server stopped before the answer was finished.",
                timing=timing,
                started=started,
            )
        except Exception:
            logger.exception("generation %s failed", job.message_id)
            outcome = self._ended(
                running,
                target_of(running, target),
                status="failed",
                code="INTERNAL_ERROR",
                message="The gateway failed while generating this answer.",
                timing=timing,
                started=started,
            )
        running.finishing = True
        try:
            await self._finish(running, outcome)
        finally:
            self._running.pop(job.message_id, None)

    async def _generate(self, running: _Running, started: float, timing: dict[str, int]) -> Outcome:
        job = running.job
        last_error: ProviderError | None = None
        for target in job.targets:
            running.current = target
            attempt = 0
            while True:
                try:
                    usage = await self._stream(running, target, started, timing)
                except _FailedAfterOutput as failure:
                    return self._ended(
                        running,
                        target,
                        status="failed",
                        code=failure.error.kind.value,
                        message=USER_MESSAGES[failure.error.kind],
                        timing=timing,
                        started=started,
                    )
                except ProviderError as error:
                    last_error = error
                    delay = self._backoff(error, attempt)
                    if delay is None:
                        logger.warning("%s failed: %r", target.model_name, error)
                        break
                    attempt += 1
                    await asyncio.sleep(delay)
                    continue
                return Outcome(
                    status="complete",
                    text=running.text,
                    model_name=target.model_name,
                    provider=target.provider,
                    pricing=target.pricing,
                    prompt_tokens=usage.prompt_tokens if usage else None,
                    completion_tokens=usage.completion_tokens if usage else None,
                    ttft_ms=timing.get("ttft"),
                    total_ms=_ms_since(started),
                )
            if last_error is not None and last_error.kind is ErrorKind.BAD_REQUEST:
                break  # the fallback would refuse the same request
        assert last_error is not None
        return self._ended(
            running,
            job.targets[0],
            status="failed",
            code=last_error.kind.value,
            message=USER_MESSAGES[last_error.kind],
            timing=timing,
            started=started,
        )

    def _backoff(self, error: ProviderError, attempt: int) -> float | None:
        """Seconds to wait before retrying, or None when not to retry."""
        settings = self._settings
        if not error.retryable or attempt >= settings.provider_max_retries:
            return None
        if error.retry_after is not None:
            hint = max(0.0, error.retry_after)
            return hint if hint <= settings.provider_retry_max_seconds else None
        delay: float = min(
            settings.provider_retry_base_seconds * 2.0**attempt,
            settings.provider_retry_max_seconds,
        )
        return delay * random.uniform(0.75, 1.0)

    async def _stream(
        self, running: _Running, target: Target, started: float, timing: dict[str, int]
    ) -> Usage | None:
        settings = self._settings
        provider: Provider = await self._registry.get(target.provider)
        stream = provider.stream(target.request)
        usage: Usage | None = None
        last_flush = time.monotonic()
        last_publish = last_flush
        coalesce = settings.delta_coalesce_ms / 1000
        first = True
        try:
            while True:
                timeout = (
                    settings.provider_first_token_timeout
                    if first
                    else settings.provider_idle_timeout
                )
                try:
                    async with asyncio.timeout(timeout):
                        event = await anext(stream)
                except StopAsyncIteration:
                    return usage
                except TimeoutError:
                    error = ProviderError(ErrorKind.TIMEOUT, "No data from the provider in time.")
                    if running.parts:
                        raise _FailedAfterOutput(error) from None
                    raise error from None
                except ProviderError as error:
                    if running.parts:
                        raise _FailedAfterOutput(error) from None
                    raise
                first = False
                if isinstance(event, Usage):
                    usage = event
                elif isinstance(event, TextDelta) and event.text:
                    if not running.parts:
                        timing["ttft"] = _ms_since(started)
                    running.parts.append(event.text)
                    running.unpublished += 1
                    now = time.monotonic()
                    # The first delta goes out at once; later ones are coalesced, so a fast
                    # stream costs one broker message (and one event per subscriber) per
                    # interval instead of one per token.
                    if running.seq == 0 or now - last_publish >= coalesce:
                        await self._publish_deltas(running)
                        last_publish = now
                    if now - last_flush >= settings.generation_flush_seconds:
                        await self._save_partial(running)
                        last_flush = now
        finally:
            await _close(stream)

    async def _publish_deltas(self, running: _Running) -> None:
        """Send the text not yet sent as one numbered delta."""
        text = running.take_unpublished()
        if text:
            running.seq += 1
            job = running.job
            # Live delivery only: a delta the broker cannot take is dropped, the answer goes on.
            await self._broker.send(
                wire.MessageDelta(job.dialog_id, job.message_id, running.seq, text)
            )

    async def _save_partial(self, running: _Running) -> None:
        try:
            async with self._db.transaction() as session:
                await outcomes.save_partial(session, running.job.message_id, running.text)
        except Exception:  # a missed flush only widens what a crash could lose
            logger.exception("could not save partial text of %s", running.job.message_id)

    def _ended(
        self,
        running: _Running,
        target: Target | None,
        *,
        status: str,
        code: str,
        message: str,
        timing: dict[str, int],
        started: float,
    ) -> Outcome:
        job = running.job
        target = target or (job.targets[0] if job.targets else None)
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
            total_ms=_ms_since(started),
        )

    async def _finish(self, running: _Running, outcome: Outcome) -> None:
        job = running.job
        await self._publish_deltas(running)  # the last coalesced text before the end
        for attempt in range(3):
            try:
                async with self._db.transaction() as session:
                    message = await outcomes.finish(session, job, outcome)
                break
            except Exception:
                logger.exception("finishing %s failed (attempt %d)", job.message_id, attempt + 1)
                if attempt == 2:
                    return  # the sweeper recovers it when the lease expires
                await asyncio.sleep(0.2 * (attempt + 1))
        # The finished row rides along, so subscribers need not read it back.
        row = message_payload(message)
        end: wire.AnswerEnd
        if message.status == "complete":
            end = wire.MessageCompleted(job.dialog_id, job.message_id, row)
        else:
            code, text = message.error_code or "FAILED", message.error_message or ""
            end = wire.MessageFailed(job.dialog_id, job.message_id, code, text, row)
        await self._broker.send(end)
        await self._broker.send(wire.BalanceChanged(job.user_id, "usage"))


def target_of(running: _Running, default: Target | None) -> Target | None:
    return running.current or default


def _ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


async def _close(stream: AsyncIterator[Any]) -> None:
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        with contextlib.suppress(Exception):
            await aclose()
