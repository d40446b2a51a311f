"""Anthropic Messages through the official SDK, streamed.

The system prompt goes in the top-level ``system`` field, stop strings in
``stop_sequences``; cache breakpoints are placed by ``anthropic_cache``. Usage: the input
counts come with ``message_start``; ``message_delta`` carries cumulative totals that
replace (not add to) what came before; the cache's reads and writes are added back to
``input_tokens``, which leaves them out. An ``error`` event
inside the 200 stream reaches us as an ``APIStatusError`` with status 200 and the error's
``type`` (e.g. ``overloaded_error``), so it is classified by type.

anthropic 2.x has no ``temperature``/``top_p`` arguments any more; when a request sets
them they travel in ``extra_body``, as the Messages API documents them.

Tools arrive in OpenAI's form and are translated: a function becomes a tool with an
``input_schema``, an assistant's tool calls become ``tool_use`` blocks, and a run of
``"tool"`` messages becomes one user message of ``tool_result`` blocks (a user message
right after them joins it, since the API wants the roles to alternate). Streamed
``tool_use`` blocks become ``ToolCallDelta``s numbered among the reply's tool calls.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from typing import Any, cast

import anthropic
import httpx2
from anthropic.types import (
    ContentBlockParam,
    MessageParam,
    RawContentBlockDeltaEvent,
    RawContentBlockStartEvent,
    RawMessageDeltaEvent,
    RawMessageStartEvent,
    RawMessageStopEvent,
    ToolChoiceParam,
    ToolParam,
)

from llm_gateway.providers.anthropic_cache import StreamUsage, with_breakpoints
from llm_gateway.providers.base import (
    ChatMessage,
    ErrorKind,
    Finish,
    ProviderError,
    ProviderRequest,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
)
from llm_gateway.providers.errors import (
    kind_for_status,
    kind_for_type,
    retry_after_seconds,
    upstream_error,
)
from llm_gateway.providers.sdk_base import ClientOptions, SdkProvider

LABEL = "Anthropic"

# Anthropic's stop reasons as OpenAI's finish reasons; anything else is a plain stop.
FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
# What OpenAI's string tool choices ask of Anthropic.
TOOL_CHOICES = {"auto": "auto", "required": "any", "none": "none"}


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
        system, messages = with_breakpoints(request, _messages(request.turns))
        stream = await self._client.messages.create(
            model=request.model,
            max_tokens=request.max_tokens,
            messages=messages,
            system=system,
            stop_sequences=request.stop or anthropic.omit,
            metadata={"user_id": request.user} if request.user else anthropic.omit,
            tools=_tools(request.tools) if request.tools else anthropic.omit,
            tool_choice=_tool_choice(request),
            extra_body=sampling or None,
            stream=True,
        )
        usage = StreamUsage()
        finished = False
        reported = False  # whether Finish was yielded
        tool_blocks: dict[int, int] = {}  # content block index -> tool call ordinal
        async with stream:
            async for event in stream:
                if isinstance(event, RawMessageStartEvent):
                    usage.started(event.message.usage)
                elif isinstance(event, RawContentBlockDeltaEvent):
                    delta = event.delta
                    if delta.type == "text_delta":
                        if delta.text:
                            yield TextDelta(delta.text)
                    elif delta.type == "input_json_delta" and delta.partial_json:
                        ordinal = tool_blocks.get(event.index)
                        if ordinal is not None:
                            yield ToolCallDelta(ordinal, None, None, delta.partial_json)
                elif isinstance(event, RawContentBlockStartEvent):
                    block = event.content_block
                    if block.type == "tool_use":
                        ordinal = len(tool_blocks)
                        tool_blocks[event.index] = ordinal
                        # streamed inputs start empty and arrive as input_json_delta
                        start = json.dumps(block.input, ensure_ascii=False) if block.input else ""
                        yield ToolCallDelta(ordinal, block.id, block.name, start)
                elif isinstance(event, RawMessageDeltaEvent):
                    counts = getattr(event, "usage", None)  # absent if the server left it out
                    if counts is not None:
                        usage.delta(counts)
                    stop_reason = event.delta.stop_reason
                    if stop_reason is not None:
                        finished = True
                        if not reported:
                            reported = True
                            yield Finish(FINISH_REASONS.get(stop_reason, "stop"))
                elif isinstance(event, RawMessageStopEvent):
                    finished = True
        if not finished:
            raise self._unfinished()
        if not reported:
            yield Finish("stop")
        if (total := usage.usage()) is not None:
            yield total

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


def _messages(turns: list[ChatMessage]) -> list[MessageParam]:
    """The conversation as Messages API turns; tool results grouped into user messages."""
    messages: list[MessageParam] = []
    results: list[ContentBlockParam] | None = None  # the user message tool results go in
    for message in turns:
        if message.role == "tool":
            if message.tool_call_id is None:
                raise _refused("a tool message has no tool_call_id")
            block: ContentBlockParam = {
                "type": "tool_result",
                "tool_use_id": message.tool_call_id,
                "content": message.content,
            }
            if results is None:
                results = [block]
                messages.append({"role": "user", "content": results})
            else:
                results.append(block)
            continue
        if message.role == "user" and results is not None:
            if message.content:
                results.append({"type": "text", "text": message.content})
            results = None
            continue
        results = None
        messages.append(_message(message))
    return messages


def _message(message: ChatMessage) -> MessageParam:
    if message.role == "assistant":
        if message.tool_calls:
            blocks: list[ContentBlockParam] = []
            if message.content:
                blocks.append({"type": "text", "text": message.content})
            for call in message.tool_calls:
                blocks.append(
                    {
                        "type": "tool_use",
                        "id": call.id,
                        "name": call.name,
                        "input": _arguments(call.arguments),
                    }
                )
            return {"role": "assistant", "content": blocks}
        return {"role": "assistant", "content": message.content}
    if message.role == "system":  # only a non-leading one reaches here; the API decides
        return {"role": "system", "content": message.content}
    return {"role": "user", "content": message.content}


def _arguments(arguments: str) -> dict[str, object]:
    """A tool call's JSON arguments as the object ``tool_use`` wants ("" counts as {})."""
    if not arguments.strip():
        return {}
    try:
        value = json.loads(arguments)
    except ValueError:
        raise _refused("a tool call's arguments are not valid JSON") from None
    if not isinstance(value, dict):
        raise _refused("a tool call's arguments are not a JSON object")
    return value


def _tools(tools: tuple[dict[str, Any], ...]) -> list[ToolParam]:
    translated: list[ToolParam] = []
    for tool in tools:
        function = tool.get("function")
        if tool.get("type") != "function" or not isinstance(function, dict):
            raise _refused("only function tools are supported")
        name = function.get("name")
        if not isinstance(name, str):
            raise _refused("a tool has no name")
        param: dict[str, Any] = {"name": name}
        if function.get("description"):
            param["description"] = function["description"]
        param["input_schema"] = function.get("parameters") or {"type": "object", "properties": {}}
        translated.append(cast(ToolParam, param))
    return translated


def _tool_choice(request: ProviderRequest) -> ToolChoiceParam | anthropic.Omit:
    """OpenAI's ``tool_choice`` and ``parallel_tool_calls`` as one Anthropic tool choice."""
    choice = request.tool_choice
    if choice is None:
        if request.parallel_tool_calls is False and request.tools:
            return {"type": "auto", "disable_parallel_tool_use": True}
        return anthropic.omit
    if isinstance(choice, str):
        if choice not in TOOL_CHOICES:
            raise _refused(f"unknown tool_choice {choice!r}")
        if not request.tools and choice != "required":
            return anthropic.omit  # "auto" or "none" without tools asks for nothing
        mapped: dict[str, Any] = {"type": TOOL_CHOICES[choice]}
    else:
        function = choice.get("function")
        name = function.get("name") if isinstance(function, dict) else None
        if choice.get("type") != "function" or not isinstance(name, str):
            raise _refused("tool_choice names no function")
        mapped = {"type": "tool", "name": name}
    if request.parallel_tool_calls is False and mapped["type"] != "none":
        mapped["disable_parallel_tool_use"] = True
    return cast(ToolChoiceParam, mapped)


def _refused(detail: str) -> ProviderError:
    return upstream_error(LABEL, ErrorKind.BAD_REQUEST, detail)
