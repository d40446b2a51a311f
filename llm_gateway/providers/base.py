"""The one streaming interface every provider adapter implements.

An adapter turns a normalized ``ProviderRequest`` into an async stream of ``TextDelta`` and
``ToolCallDelta`` events, then one ``Finish`` (why the reply ended, in OpenAI's terms), then
(when the provider reports it) one ``Usage`` event, and maps the provider's failures onto
``ProviderError`` with a stable ``kind``. Requests and tool calls are expressed in OpenAI's
chat-completions vocabulary; each adapter translates them to its own wire format. Retries, timeouts,
fallbacks and money are the chat service's business, not the adapter's: adapters make
exactly one attempt (SDK retries off).
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Role = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A function call the assistant made; ``arguments`` is the JSON text, as OpenAI sends it."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One message of the context.

    An assistant message may carry ``tool_calls`` (its ``content`` may then be ""); a
    ``"tool"`` message is the result of the call named by ``tool_call_id``.
    """

    role: Role
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class ProviderRequest:
    """What to ask: the upstream model id, the fitted context and the merged params."""

    model: str
    messages: list[ChatMessage]
    max_tokens: int
    temperature: float | None = None
    top_p: float | None = None
    stop: list[str] | None = None
    user: str | None = field(default=None, repr=False)
    # OpenAI's forms: tools as {"type": "function", "function": {...}}, tool_choice as
    # "auto" | "none" | "required" | {"type": "function", "function": {"name": ...}},
    # response_format as {"type": "text" | "json_object" | "json_schema", ...}.
    tools: tuple[dict[str, Any], ...] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    response_format: dict[str, Any] | None = None
    seed: int | None = None

    @property
    def system(self) -> str | None:
        """The system prompt, if the context starts with one."""
        if self.messages and self.messages[0].role == "system":
            return self.messages[0].content
        return None

    @property
    def turns(self) -> list[ChatMessage]:
        """The conversation without the leading system prompt."""
        return self.messages[1:] if self.system is not None else list(self.messages)


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A fragment of tool call ``index`` (0-based, in the order the calls are made).

    The first fragment of a call carries its ``id`` and ``name``; later ones carry ``None``
    there and append to ``arguments`` (the JSON text, joined in order).
    """

    index: int
    id: str | None
    name: str | None
    arguments: str


@dataclass(frozen=True, slots=True)
class Finish:
    """Why the reply ended: "stop", "length", "tool_calls" or "content_filter" (OpenAI's).

    A stream that ends without an error yields exactly one, after the last delta and
    before ``Usage``.
    """

    reason: str


@dataclass(frozen=True, slots=True)
class Usage:
    """The tokens of one call, normalised once by its adapter (README: prompt caching).

    ``prompt_tokens`` counts every input token, as OpenTelemetry's
    ``gen_ai.usage.input_tokens`` does: uncached ones, those written to the provider's
    prompt cache (``cache_write_tokens``) and those read from it (``cache_read_tokens``).
    ``completion_tokens`` counts every output token, reasoning included;
    ``reasoning_tokens`` is that part, None when the provider does not say.
    """

    prompt_tokens: int
    completion_tokens: int
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int | None = None

    @property
    def uncached_tokens(self) -> int:
        """Input tokens neither read from nor written to the cache."""
        return max(0, self.prompt_tokens - self.cache_read_tokens - self.cache_write_tokens)


StreamEvent = TextDelta | ToolCallDelta | Finish | Usage


class ErrorKind(enum.Enum):
    """What went wrong upstream, as the chat service needs to know it."""

    RATE_LIMITED = "RATE_LIMITED"  # 429: retry later
    UNAVAILABLE = "PROVIDER_UNAVAILABLE"  # 5xx, 529, overloaded, connection refused
    TIMEOUT = "PROVIDER_TIMEOUT"  # no answer in time
    AUTH = "PROVIDER_AUTH"  # 401/403: our credentials are wrong
    MODEL_NOT_FOUND = "MODEL_NOT_FOUND"  # 404 on the model
    BAD_REQUEST = "PROVIDER_BAD_REQUEST"  # 400/413/422: the request itself was refused
    STREAM_CUT = "STREAM_CUT"  # the stream broke after it started


RETRYABLE = frozenset({ErrorKind.RATE_LIMITED, ErrorKind.UNAVAILABLE, ErrorKind.TIMEOUT})


class ProviderError(Exception):
    """A provider failure with a stable kind and a message safe to show a user."""

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status = status
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        return self.kind in RETRYABLE

    def __repr__(self) -> str:
        return f"ProviderError({self.kind.name}, {self.message!r}, status={self.status})"


class Provider(Protocol):
    """A provider adapter. ``stream`` is an async generator; closing it aborts the call."""

    name: str

    def stream(self, request: ProviderRequest) -> AsyncIterator[StreamEvent]: ...

    async def aclose(self) -> None: ...
