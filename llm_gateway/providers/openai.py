"""OpenAI Chat Completions through the official SDK (also vLLM, Ollama, llama.cpp via base_url).

One attempt per call (``max_retries=0``); the stream asks for a final usage chunk
(``stream_options.include_usage``), which arrives with ``choices: []``. ``max_tokens`` is
sent rather than ``max_completion_tokens`` because OpenAI-compatible servers understand it.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator

import httpx2
import openai
from openai.types.chat import ChatCompletionMessageParam

from llm_gateway.providers.base import (
    ChatMessage,
    ErrorKind,
    ProviderError,
    ProviderRequest,
    StreamEvent,
    TextDelta,
    Usage,
)
from llm_gateway.providers.errors import (
    guarded,
    kind_for_status,
    kind_for_type,
    retry_after_seconds,
    upstream_error,
)

LABEL = "OpenAI"


class OpenAIProvider:
    """Streams chat completions from an OpenAI-compatible endpoint."""

    name = "openai"

    def __init__(
        self,
        api_key: str,
        base_url: str | None = None,
        *,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
    ) -> None:
        self._api_key = api_key
        self._client = openai.AsyncOpenAI(
            api_key=api_key,
            base_url=base_url,
            max_retries=0,
            timeout=httpx2.Timeout(read_timeout, connect=connect_timeout),
        )

    def stream(self, request: ProviderRequest) -> AsyncIterator[StreamEvent]:
        return guarded(LABEL, self._events(request), self._classify)

    async def aclose(self) -> None:
        await self._client.close()

    async def _events(self, request: ProviderRequest) -> AsyncGenerator[StreamEvent, None]:
        if self._client.is_closed():
            raise upstream_error(LABEL, ErrorKind.UNAVAILABLE, "the provider was shut down")
        stream = await self._client.chat.completions.create(
            model=request.model,
            messages=[_message(m) for m in request.messages],
            max_tokens=request.max_tokens,
            temperature=openai.omit if request.temperature is None else request.temperature,
            top_p=openai.omit if request.top_p is None else request.top_p,
            stop=request.stop or openai.omit,
            user=request.user or openai.omit,
            stream=True,
            stream_options={"include_usage": True},
        )
        usage: Usage | None = None
        finished = False
        async with stream:
            async for chunk in stream:
                if chunk.usage is not None:
                    usage = Usage(chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
                for choice in chunk.choices:  # the usage chunk has none
                    if choice.index != 0:
                        continue
                    if choice.delta is not None and choice.delta.content:
                        yield TextDelta(choice.delta.content)
                    if choice.finish_reason is not None:
                        finished = True
        if not finished:
            raise upstream_error(LABEL, ErrorKind.UNAVAILABLE, "the stream ended without finishing")
        if usage is not None:
            yield usage

    def _classify(self, exc: Exception) -> ProviderError | None:
        secrets = (self._api_key,)
        if isinstance(exc, openai.APITimeoutError | httpx2.TimeoutException):
            return upstream_error(LABEL, ErrorKind.TIMEOUT)
        if isinstance(exc, openai.APIConnectionError | httpx2.TransportError):
            return upstream_error(LABEL, ErrorKind.UNAVAILABLE, "connection failed")
        if isinstance(exc, openai.APIStatusError):
            return upstream_error(
                LABEL,
                kind_for_status(exc.status_code),
                _detail(exc),
                status=exc.status_code,
                retry_after=retry_after_seconds(exc.response.headers),
                secrets=secrets,
            )
        if isinstance(exc, openai.APIError):  # an error object inside the stream
            kind = kind_for_type(exc.code, exc.type)
            return upstream_error(LABEL, kind, _detail(exc), secrets=secrets)
        if isinstance(exc, ValueError):  # undecodable JSON in the stream
            return upstream_error(LABEL, ErrorKind.UNAVAILABLE, "malformed response")
        return None


def _detail(exc: openai.APIError) -> str:
    body = exc.body
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return str(body["message"])
    return exc.message


def _message(message: ChatMessage) -> ChatCompletionMessageParam:
    if message.role == "system":
        return {"role": "system", "content": message.content}
    if message.role == "assistant":
        return {"role": "assistant", "content": message.content}
    return {"role": "user", "content": message.content}
