"""Generations run here, as tasks owned by the process, not by a request or a socket.

``GenerationManager`` owns their lifecycle: it launches one task per answer, stops them
(a user's cancel, from any instance, through the control channel; shutdown after its grace
period), answers other instances' snapshot requests, and renews the leases of every
running answer's hold in one statement. Each task asks ``upstream`` for the answer and has
``persistence`` store its end exactly once; a crash is recovered later by ``recovery``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from llm_gateway.db.engine import Database
from llm_gateway.enums import MessageStatus
from llm_gateway.errors import ServiceUnavailable
from llm_gateway.observability.metrics import GatewayMetrics
from llm_gateway.observability.tracing import GenerationSpans
from llm_gateway.providers.registry import ProviderRegistry
from llm_gateway.services.chat.generation import persistence
from llm_gateway.services.chat.generation.outcomes import Outcome
from llm_gateway.services.chat.generation.running_answer import Running, ended
from llm_gateway.services.chat.generation.spans import record_outcome, traced
from llm_gateway.services.chat.generation.upstream import Upstream
from llm_gateway.services.chat.planning import GenerationJob
from llm_gateway.services.money import holds
from llm_gateway.services.money.balances import MoneyPolicy
from llm_gateway.services.plumbing import broker_control as control
from llm_gateway.services.plumbing import broker_events as wire
from llm_gateway.services.plumbing.broker import UNAVAILABLE_MESSAGE, Broker
from llm_gateway.settings import Settings

logger = logging.getLogger("llm_gateway.generation")

CONTROL_READY_SECONDS = 2.0
KEPT_WAIT_SECONDS = 3.0
INTERRUPTED_MESSAGE = "The server stopped before the answer was finished."
CONTROL_RETRY_SECONDS = 1.0


class GenerationManager:
    """The answers this process is generating (see the module docstring)."""

    def __init__(
        self,
        db: Database,
        broker: Broker,
        registry: ProviderRegistry,
        settings: Settings,
        policy: Callable[[], MoneyPolicy],
        metrics: GatewayMetrics,
        spans: GenerationSpans | None = None,
    ) -> None:
        self._db = db
        self.spans = spans or GenerationSpans()  # one span per generation, with tracing on
        self._broker = broker
        self._policy = policy  # the one the services use, read when needed
        self.metrics = metrics
        self._upstream = Upstream(
            broker,
            registry,
            settings,
            lambda running: persistence.save_partial(db, running),
            metrics,
        )
        self._running: dict[uuid.UUID, Running] = {}
        # API requests running here (their own tasks): hold → task.
        self._kept: dict[uuid.UUID, asyncio.Task[Any] | None] = {}
        self._control: asyncio.Task[None] | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._control_ready = asyncio.Event()

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
        # API requests stop with their responses (the server cancels those first); wait
        # for them to store their end, so nothing writes after the pool is closed.
        kept = [task for task in self._kept.values() if task is not None]
        if kept:
            _, pending = await asyncio.wait(kept, timeout=max(grace_seconds, KEPT_WAIT_SECONDS))
            for late in pending:
                late.cancel()
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
        while True:
            policy = self._policy()
            await asyncio.sleep(policy.lease.total_seconds() / 3)
            ids = [r.job.reservation_id for r in self._running.values() if not r.finishing]
            ids += list(self._kept)
            if not ids:
                continue
            try:
                async with self._db.transaction() as session:
                    await holds.renew_leases(session, ids, policy)
            except Exception:  # the database is down: the next beat tries again
                logger.exception("could not renew the leases of %d generations", len(ids))

    @property
    def upstream(self) -> Upstream:
        """The provider caller, for API requests that stream in their own task."""
        return self._upstream

    @contextlib.contextmanager
    def keep_alive(self, reservation_id: uuid.UUID) -> Iterator[None]:
        """Renew this hold's lease with the generations' until the block ends."""
        self._kept[reservation_id] = asyncio.current_task()
        try:
            yield
        finally:
            self._kept.pop(reservation_id, None)

    def launch(self, job: GenerationJob, accepted: float | None = None) -> None:
        """Start generating ``job`` (its request arrived at ``accepted``, a monotonic time)."""
        running = Running(job, accepted=accepted)
        self._running[job.message_id] = running
        running.task = asyncio.create_task(self._run(running), name=f"generation-{job.message_id}")

    def busy(self) -> int:
        """Answers and API requests running in this process."""
        return len(self._running) + len(self._kept)

    def is_running(self, message_id: uuid.UUID) -> bool:
        return message_id in self._running

    async def wait(self, message_id: uuid.UUID) -> None:
        """Until the local generation of ``message_id`` (if any) has finished."""
        running = self._running.get(message_id)
        if running is not None and running.task is not None:
            await asyncio.wait([running.task])

    # -- control: cancel and snapshots, from any instance --------------------------------

    async def cancel(self, message_id: uuid.UUID) -> None:
        """Stop a generation wherever it runs (this process, or another via the broker)."""
        if not self._cancel_local(message_id) and not await self._broker.send(
            control.CancelRequest(message_id)
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
        return await self._broker.send(control.SnapshotRequest(dialog_id))

    async def _listen(self) -> None:
        while True:
            try:
                async with self._broker.subscribe(control.CONTROL_CHANNEL) as events:
                    self._control_ready.set()
                    async for event in events:
                        request = control.decode_control(event)
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

    async def _on_control(self, request: control.ControlRequest) -> None:
        if isinstance(request, control.CancelRequest):
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

    async def _run(self, running: Running) -> None:
        # Started in the task of the request that sent the message (its span is current).
        with traced(self.spans, running) as record:
            outcome = await self.generate(
                running, "chat", "cancel", ("CANCELLED", "Stopped at the user's request.")
            )
            record_outcome(record, running, outcome)
            running.finishing = True
            try:
                await persistence.finish(
                    self._db, self._broker, running, outcome, self.metrics, self._policy()
                )
            finally:
                self._running.pop(running.job.message_id, None)

    async def generate(
        self, running: Running, source: str, stopped_by: str, stop: tuple[str, str]
    ) -> Outcome:
        """The answer's outcome, also when it is stopped or crashes: stopped with
        ``stop_reason == stopped_by`` it ends CANCELLED with ``stop`` (code, message),
        stopped otherwise (shutdown) INTERRUPTED, crashed FAILED / INTERNAL_ERROR."""
        started = time.monotonic()
        timing: dict[str, int] = {}
        try:
            with self.metrics.generating(source):
                return await self._upstream.generate(running, started, timing)
        except asyncio.CancelledError:
            by_client = running.stop_reason == stopped_by
            status = MessageStatus.CANCELLED if by_client else MessageStatus.INTERRUPTED
            code, message = stop if by_client else ("INTERRUPTED", INTERRUPTED_MESSAGE)
        except Exception:
            logger.exception("generation %s failed", running.job.message_id)
            status, code = MessageStatus.FAILED, "INTERNAL_ERROR"
            message = "The gateway failed while generating this answer."
        return ended(
            running,
            running.target(),
            status=status,
            code=code,
            message=message,
            timing=timing,
            started=started,
        )
