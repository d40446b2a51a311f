"""Anthropic Messages through the official SDK, streamed.

The system prompt goes in the top-level ``system`` field, stop strings in
``stop_sequences``. Usage: ``input_tokens`` comes with ``message_start``; ``message_delta``
carries cumulative totals that replace (not add to) what came before. An ``error`` event
inside the 200 stream reaches us as an ``APIStatusError`` with status 200 and the error's
``type`` (e.g. ``overloaded_error``), so it is classified by type.

anthropic 2.x has no ``temperature``/``top_p`` arguments any more; when a request sets
them they travel in ``extra_body``, as the Messages API documents them.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import anthropic
import httpx2
from anthropic.types import (
    MessageParam,
    RawContentBlockDeltaEvent,
    RawMessageDeltaEvent,
    RawMessageStartEvent,
    RawMessageStopEvent,
)

from llm_gateway.providers.base import (
    ChatMessage,
    ProviderError,
    ProviderRequest,
    StreamEvent,
    TextDelta,
    Usage,
)
from llm_gateway.providers.errors import (
    kind_for_status,
    kind_for_type,
    retry_after_seconds,
    upstream_error,
)
from llm_gateway.providers.sdk_base import ClientOptions, SdkProvider

LABEL = "Anthropic"


class AnthropicProvider(SdkProvider[anthropic.AsyncAnthropic]):
    """Streams replies from the Anthropic Messages API."""

    name = "anthropic"
    label = LABEL
    timeout_errors = (anthropic.APITimeoutError, httpx2.TimeoutException)
    connection_errors = (anthropic.APIConnectionError, httpx2.TransportError)

    def _open_client(self, options: ClientOptions) -> anthropic.AsyncAnthropic:
        return anthropic.AsyncAnthropic(**options)

    async def _events(self, request: ProviderRequest) -> AsyncGenerator[StreamEvent, None]:
        self._check_open()
        sampling: dict[str, Any] = {}
        if request.temperature is not None:
            sampling["temperature"] = request.temperature
        if request.top_p is not None:
            sampling["top_p"] = request.top_p
        stream = await self._client.messages.create(
            model=request.model,
            max_tokens=request.max_tokens,
            messages=[_message(m) for m in request.turns],
            system=request.system if request.system is not None else anthropic.omit,
            stop_sequences=request.stop or anthropic.omit,
            metadata={"user_id": request.user} if request.user else anthropic.omit,
            extra_body=sampling or None,
            stream=True,
        )
        input_tokens: int | None = None
        output_tokens: int | None = None
        finished = False
        async with stream:
            async for event in stream:
                if isinstance(event, RawMessageStartEvent):
                    input_tokens = _prompt_tokens(event.message.usage)
                elif isinstance(event, RawContentBlockDeltaEvent):
                    if event.delta.type == "text_delta" and event.delta.text:
                        yield TextDelta(event.delta.text)
                elif isinstance(event, RawMessageDeltaEvent):
                    usage = getattr(event, "usage", None)  # absent if the server left it out
                    if usage is not None:
                        output_tokens = usage.output_tokens
                        if usage.input_tokens is not None:
                            input_tokens = _prompt_tokens(usage)
                    finished = finished or event.delta.stop_reason is not None
                elif isinstance(event, RawMessageStopEvent):
                    finished = True
        if not finished:
            raise self._unfinished()
        if input_tokens is not None and output_tokens is not None:
            yield Usage(input_tokens, output_tokens)

    def _classify_api_error(self, exc: Exception, secrets: tuple[str, ...]) -> ProviderError | None:
        if isinstance(exc, anthropic.APIStatusError):
            in_stream = exc.status_code == 200  # an ``error`` event inside the stream
            return upstream_error(
                LABEL,
                kind_for_type(exc.type) if in_stream else kind_for_status(exc.status_code),
                exc.api_message or exc.type or "",
                status=None if in_stream else exc.status_code,
                retry_after=retry_after_seconds(exc.response.headers),
                secrets=secrets,
            )
        return None


def _prompt_tokens(usage: Any) -> int:
    """All input tokens: uncached plus those written to and read from the prompt cache."""
    return int(
        (usage.input_tokens or 0)
        + (getattr(usage, "cache_creation_input_tokens", None) or 0)
        + (getattr(usage, "cache_read_input_tokens", None) or 0)
    )


def _message(message: ChatMessage) -> MessageParam:
    if message.role == "assistant":
        return {"role": "assistant", "content": message.content}
    if message.role == "system":  # only a non-leading one reaches here; the API decides
        return {"role": "system", "content": message.content}
    return {"role": "user", "content": message.content}
