"""One answer's upstream stream: retries and backoff before the first token, the fallback
model, timeouts, and deltas coalesced and numbered for subscribers.

``Upstream.generate`` turns a job into an ``Outcome`` (complete, or failed with the
provider's error); it never touches the database itself: partial text is saved through
the ``save_partial`` callback, and the final write is ``persistence.finish``'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from llm_gateway.enums import MessageStatus
from llm_gateway.observability.metrics import GatewayMetrics
from llm_gateway.providers.base import (
    ErrorKind,
    Finish,
    Provider,
    ProviderError,
    TextDelta,
    ToolCallDelta,
    Usage,
)
from llm_gateway.providers.registry import ProviderRegistry
from llm_gateway.services.chat.generation.outcomes import Outcome
from llm_gateway.services.chat.generation.running_answer import (
    Running,
    ended,
    ms_since,
    publish_deltas,
)
from llm_gateway.services.chat.planning import Target
from llm_gateway.services.plumbing.broker import Broker
from llm_gateway.settings import Settings

logger = logging.getLogger("llm_gateway.generation")

USER_MESSAGES = {
    ErrorKind.RATE_LIMITED: "The model is rate limited right now; please try again shortly.",
    ErrorKind.UNAVAILABLE: "The model's provider is unavailable right now.",
    ErrorKind.TIMEOUT: "The model's provider did not answer in time.",
    ErrorKind.AUTH: "The gateway could not authenticate with the model's provider.",
    ErrorKind.MODEL_NOT_FOUND: "The provider does not know this model.",
    ErrorKind.BAD_REQUEST: "The provider refused the request.",
    ErrorKind.STREAM_CUT: "The answer was cut off by the provider.",
}


class _FailedAfterOutput(Exception):
    def __init__(self, error: ProviderError) -> None:
        self.error = error


class Upstream:
    """Calls the providers for one answer at a time (stateless between answers)."""

    def __init__(
        self,
        broker: Broker,
        registry: ProviderRegistry,
        settings: Settings,
        save_partial: Callable[[Running], Awaitable[None]],
        metrics: GatewayMetrics,
    ) -> None:
        self._metrics = metrics
        self._broker = broker
        self._registry = registry
        self._settings = settings
        self._save_partial = save_partial

    async def generate(self, running: Running, started: float, timing: dict[str, int]) -> Outcome:
        """Every target in turn, each with its retries, until one completes."""
        job = running.job
        last_error: ProviderError | None = None
        for target in job.targets:
            running.current = target
            attempt = 0
            while True:
                try:
                    usage = await self._stream(running, target, started, timing)
                except _FailedAfterOutput as failure:
                    self._metrics.upstream_error(target.provider, failure.error.kind.name.lower())
                    return ended(
                        running,
                        target,
                        status=MessageStatus.FAILED,
                        code=failure.error.kind.value,
                        message=USER_MESSAGES[failure.error.kind],
                        timing=timing,
                        started=started,
                    )
                except ProviderError as error:
                    last_error = error
                    self._metrics.upstream_error(target.provider, error.kind.name.lower())
                    delay = self._backoff(error, attempt)
                    if delay is None:
                        logger.warning("%s failed: %r", target.model_name, error)
                        break
                    attempt += 1
                    self._metrics.upstream_retry(target.provider)
                    await asyncio.sleep(delay)
                    continue
                return Outcome(
                    status=MessageStatus.COMPLETE,
                    text=running.text,
                    model_name=target.model_name,
                    provider=target.provider,
                    pricing=target.pricing,
                    usage=usage,
                    ttft_ms=timing.get("ttft"),
                    total_ms=ms_since(started),
                )
            if last_error is not None and last_error.kind is ErrorKind.BAD_REQUEST:
                break  # the fallback would refuse the same request
        assert last_error is not None
        return ended(
            running,
            job.targets[0],
            status=MessageStatus.FAILED,
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
        self, running: Running, target: Target, started: float, timing: dict[str, int]
    ) -> Usage | None:
        settings = self._settings
        provider: Provider = await self._registry.get(target.provider)
        stream = provider.stream(target.request)
        if running.accepted is not None:  # the first call of this answer starts now
            source = "chat" if running.job.dialog_id is not None else "api"
            self._metrics.overhead(source, time.monotonic() - running.accepted)
            running.accepted = None
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
                    if running.has_output:
                        raise _FailedAfterOutput(error) from None
                    raise error from None
                except ProviderError as error:
                    if running.has_output:
                        raise _FailedAfterOutput(error) from None
                    raise
                first = False
                if isinstance(event, Usage):
                    usage = event
                elif isinstance(event, TextDelta) and event.text:
                    if not running.has_output:
                        timing["ttft"] = ms_since(started)
                        # Nothing to lose before the first text: partial saves are due
                        # every GENERATION_FLUSH_SECONDS of streaming from here on.
                        last_flush = time.monotonic()
                    running.parts.append(event.text)
                    if running.listener is not None:
                        running.listener(event)
                        continue
                    running.unpublished += 1
                    now = time.monotonic()
                    # The first delta goes out at once; later ones are coalesced, so a fast
                    # stream costs one broker message (and one event per subscriber) per
                    # interval instead of one per token.
                    if running.seq == 0 or now - last_publish >= coalesce:
                        await publish_deltas(self._broker, running)
                        last_publish = now
                    if now - last_flush >= settings.generation_flush_seconds:
                        await self._save_partial(running)
                        last_flush = now
                elif isinstance(event, ToolCallDelta) and running.listener is not None:
                    if not running.has_output:
                        timing["ttft"] = ms_since(started)
                    running.tool_output = True
                    running.listener(event)
                elif isinstance(event, Finish):
                    running.finish_reason = event.reason
                    if running.listener is not None:
                        running.listener(event)
        finally:
            await _close(stream)


async def _close(stream: AsyncIterator[Any]) -> None:
    if (aclose := getattr(stream, "aclose", None)) is not None:
        with contextlib.suppress(Exception):
            await aclose()
