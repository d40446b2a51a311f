"""Chat completions as OpenAI sends them: the JSON object, and the event stream's chunks.

A stream is ``data: {chunk}\\n\\n`` events ended by ``data: [DONE]``: first the role, then
content and tool-call fragments as they arrive, then a chunk with the finish reason, then
(when the client asked with ``stream_options.include_usage``) one chunk with ``choices: []``
and the usage, as OpenAI ends its streams. A failure after the first event is one
``data: {"error": …}`` event, and the stream ends there without ``[DONE]``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson

from llm_gateway.api.errors import upstream_error
from llm_gateway.providers.base import Finish, TextDelta, ToolCallDelta
from llm_gateway.services.chat.completions.records import Result

FINGERPRINT = "llm-gateway"
DONE = b"data: [DONE]\n\n"


def sse(data: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(data) + b"\n\n"


def usage(result: Result) -> dict[str, Any]:
    """OpenAI's usage object: cached tokens are inside ``prompt_tokens``, reasoning tokens
    inside ``completion_tokens``, as OpenAI counts them."""
    return {
        "prompt_tokens": result.prompt_tokens,
        "completion_tokens": result.completion_tokens,
        "total_tokens": result.prompt_tokens + result.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": result.cache_read_tokens},
        "completion_tokens_details": {"reasoning_tokens": result.reasoning_tokens},
    }


def finish_reason(result: Result) -> str:
    return result.finish_reason or ("tool_calls" if result.tool_calls else "stop")


def completion(result: Result) -> dict[str, Any]:
    """The non-streamed response."""
    message: dict[str, Any] = {
        "role": "assistant",
        "content": result.text if result.text or not result.tool_calls else None,
        "refusal": None,
    }
    if result.tool_calls:
        message["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
            for call in result.tool_calls
        ]
    return {
        "id": result.request_id,
        "object": "chat.completion",
        "created": result.created,
        "model": result.model,
        "system_fingerprint": FINGERPRINT,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": finish_reason(result),
            }
        ],
        "usage": usage(result),
    }


class ChunkWriter:
    """Encodes one stream's chunks; every chunk shares the id, time and model."""

    def __init__(self, request_id: str, created: int, model: str, *, include_usage: bool) -> None:
        self._base: dict[str, Any] = {
            "id": request_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": FINGERPRINT,
        }
        if include_usage:
            self._base["usage"] = None  # as OpenAI: null on every chunk but the last
        self._include_usage = include_usage
        self._announced: set[int] = set()

    def chunk(self, delta: dict[str, Any], reason: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": reason}
        return sse({**self._base, "choices": [choice]})

    def role(self) -> bytes:
        return self.chunk({"role": "assistant", "content": "", "refusal": None})

    def text(self, text: str) -> bytes:
        return self.chunk({"content": text})

    def tool_call(self, event: ToolCallDelta) -> bytes:
        call: dict[str, Any] = {"index": event.index}
        if event.index not in self._announced:
            self._announced.add(event.index)
            call.update(id=event.id or "", type="function")
            call["function"] = {"name": event.name or "", "arguments": event.arguments}
        else:
            call["function"] = {"arguments": event.arguments}
        return self.chunk({"tool_calls": [call]})

    def end(self, result: Result) -> bytes:
        """The finish chunk, the usage chunk if asked for, and ``[DONE]``; or the error."""
        if not result.ok:
            return sse(upstream_error(result.error_code, result.error_message).body())
        parts = [self.chunk({}, finish_reason(result))]
        if self._include_usage:
            parts.append(sse({**self._base, "choices": [], "usage": usage(result)}))
        parts.append(DONE)
        return b"".join(parts)


async def stream_events(
    writer: ChunkWriter, items: AsyncIterator[TextDelta | ToolCallDelta | Finish | Result]
) -> AsyncIterator[bytes]:
    yield writer.role()
    async for item in items:
        if isinstance(item, TextDelta):
            yield writer.text(item.text)
        elif isinstance(item, ToolCallDelta):
            yield writer.tool_call(item)
        elif isinstance(item, Result):
            yield writer.end(item)
            return


async def replayed(result: Result) -> AsyncIterator[TextDelta | ToolCallDelta | Finish | Result]:
    """A stored result as the events that produced it (an idempotent repeat of a stream)."""
    if result.text:
        yield TextDelta(result.text)
    for index, call in enumerate(result.tool_calls):
        yield ToolCallDelta(index, call.id, call.name, call.arguments)
    yield result
