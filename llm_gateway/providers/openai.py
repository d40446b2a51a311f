"""OpenAI Chat Completions through the official SDK (also vLLM, Ollama, llama.cpp via base_url).

One attempt per call (``max_retries=0``); the stream asks for a final usage chunk
(``stream_options.include_usage``), which arrives with ``choices: []``. ``max_tokens`` is
sent rather than ``max_completion_tokens`` because OpenAI-compatible servers understand it.
Prompt caching needs nothing sent: OpenAI caches long prefixes by itself and reports the
cached count inside ``prompt_tokens``.

The SDK sends the request and turns error statuses into its exceptions, but the adapter
reads the event stream itself (``openai_stream``, through ``with_streaming_response``):
the SDK would build a pydantic model for every chunk of every answer, about an eighth of
the gateway's CPU per chat, to read three fields. The reader keeps the SDK's behaviour
where it matters: an error object inside the stream raises ``openai.APIError`` as the
SDK's stream does, and what follows ``[DONE]`` is drained briefly so the connection can
be reused.

Tools, ``tool_choice``, ``parallel_tool_calls``, ``response_format`` and ``seed`` are sent
as given (they are OpenAI's own forms) and left out when unset. Streamed ``tool_calls``
fragments become ``ToolCallDelta``s, normalized for OpenAI-compatible servers that repeat
a call's id and name on every fragment or leave the id out.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncGenerator
from typing import Any, cast

import httpx2
import openai
from openai.types.chat import (
    ChatCompletionAssistantMessageParam,
    ChatCompletionMessageParam,
    ChatCompletionMessageToolCallParam,
    ChatCompletionSystemMessageParam,
    ChatCompletionToolChoiceOptionParam,
    ChatCompletionToolUnionParam,
    ChatCompletionUserMessageParam,
    completion_create_params,
)

from llm_gateway.providers.base import (
    ChatMessage,
    ErrorKind,
    Finish,
    ProviderError,
    ProviderRequest,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from llm_gateway.providers.errors import (
    kind_for_status,
    kind_for_type,
    retry_after_seconds,
    upstream_error,
)
from llm_gateway.providers.openai_stream import READ_FAILURES
from llm_gateway.providers.openai_stream import chunks as sse_chunks
from llm_gateway.providers.sdk_base import ClientOptions, SdkProvider

LABEL = "OpenAI"

# OpenAI's finish reasons as they are; the legacy ``function_call`` is a tool call, and
# anything else an OpenAI-compatible server invents counts as a plain stop.
FINISH_REASONS = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "content_filter": "content_filter",
    "function_call": "tool_calls",
}


class OpenAIProvider(SdkProvider[openai.AsyncOpenAI]):
    """Streams chat completions from an OpenAI-compatible endpoint."""

    name = "openai"
    label = LABEL
    timeout_errors = (openai.APITimeoutError, httpx2.TimeoutException)
    connection_errors = (openai.APIConnectionError, *READ_FAILURES)

    def _open_client(self, options: ClientOptions) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(**options)

    async def _events(self, request: ProviderRequest) -> AsyncGenerator[StreamEvent, None]:
        self._check_open()
        usage: Usage | None = None
        finished = False
        calls = _ToolCalls()
        async with (
            self._client.chat.completions.with_streaming_response.create(
                model=request.model,
                messages=[_message(m) for m in request.messages],
                max_tokens=request.max_tokens,
                temperature=openai.omit if request.temperature is None else request.temperature,
                top_p=openai.omit if request.top_p is None else request.top_p,
                stop=request.stop or openai.omit,
                user=request.user or openai.omit,
                tools=_tools(request),
                tool_choice=_tool_choice(request),
                parallel_tool_calls=(
                    openai.omit
                    if request.parallel_tool_calls is None
                    else request.parallel_tool_calls
                ),
                response_format=_response_format(request),
                seed=openai.omit if request.seed is None else request.seed,
                stream=True,
                stream_options={"include_usage": True},
            ) as response,
            contextlib.aclosing(sse_chunks(response.http_response)) as chunks,
        ):
            async for chunk in chunks:
                reported = chunk.get("usage")
                if reported:
                    usage = _usage(reported)
                for choice in chunk.get("choices") or ():  # the usage chunk has none
                    if choice.get("index") != 0:
                        continue
                    delta = choice.get("delta") or {}
                    content = delta.get("content")
                    if content:
                        yield TextDelta(content)
                    fragments = delta.get("tool_calls")
                    if fragments:
                        for fragment in calls.read(fragments):
                            yield fragment
                    reason = choice.get("finish_reason")
                    if reason is not None and not finished:
                        finished = True
                        yield Finish(_finish_reason(reason))
        if not finished:
            raise self._unfinished()
        if usage is not None:
            yield usage

    def _classify_api_error(self, exc: Exception, secrets: tuple[str, ...]) -> ProviderError | None:
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
        return None


def _detail(exc: openai.APIError) -> str:
    body = exc.body
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return str(body["message"])
    return exc.message


class _ToolCalls:
    """Turns a stream's ``delta.tool_calls`` fragments into ``ToolCallDelta``s.

    The first fragment of each call carries its id (one is made up if the server sent
    none) and name; later ones only their piece of the arguments.
    """

    __slots__ = ("_seen",)

    def __init__(self) -> None:
        self._seen: set[int] = set()

    def read(self, fragments: Any) -> list[ToolCallDelta]:
        if not isinstance(fragments, list):
            raise ValueError("tool_calls is not a list")
        deltas: list[ToolCallDelta] = []
        for position, fragment in enumerate(fragments):
            if not isinstance(fragment, dict):
                raise ValueError("a tool call fragment is not an object")
            index = fragment.get("index")
            if not isinstance(index, int) or isinstance(index, bool):
                index = position  # some compatible servers leave the index out
            function = fragment.get("function") or {}
            if not isinstance(function, dict):
                raise ValueError("a tool call's function is not an object")
            arguments = function.get("arguments") or ""
            if not isinstance(arguments, str):  # a server that sent the object itself
                arguments = json.dumps(arguments, ensure_ascii=False, separators=(",", ":"))
            if index in self._seen:
                deltas.append(ToolCallDelta(index, None, None, arguments))
                continue
            self._seen.add(index)
            call_id = fragment.get("id") or f"call_{uuid.uuid4().hex[:24]}"
            name = function.get("name")
            name = name if isinstance(name, str) else None
            deltas.append(ToolCallDelta(index, str(call_id), name, arguments))
        return deltas


def _usage(reported: dict[str, Any]) -> Usage:
    """OpenAI's usage as ours: its ``prompt_tokens`` already include the cached ones
    (``prompt_tokens_details.cached_tokens``) and its ``completion_tokens`` the reasoning
    ones (``completion_tokens_details.reasoning_tokens``). OpenAI charges no cache writes."""
    prompt = int(reported["prompt_tokens"])
    cached = _count_in(reported.get("prompt_tokens_details"), "cached_tokens")
    reasoning = _count_in(reported.get("completion_tokens_details"), "reasoning_tokens")
    return Usage(
        prompt,
        int(reported["completion_tokens"]),
        cache_read_tokens=min(cached or 0, prompt),
        reasoning_tokens=reasoning,
    )


def _count_in(details: object, name: str) -> int | None:
    """A count inside a usage details object; None when a compatible server left it out."""
    value = details.get(name) if isinstance(details, dict) else None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def _finish_reason(reason: object) -> str:
    return FINISH_REASONS.get(reason, "stop") if isinstance(reason, str) else "stop"


def _tools(request: ProviderRequest) -> list[ChatCompletionToolUnionParam] | openai.Omit:
    if not request.tools:
        return openai.omit
    return cast(list[ChatCompletionToolUnionParam], list(request.tools))


def _tool_choice(request: ProviderRequest) -> ChatCompletionToolChoiceOptionParam | openai.Omit:
    if request.tool_choice is None:
        return openai.omit
    return cast(ChatCompletionToolChoiceOptionParam, request.tool_choice)


def _response_format(
    request: ProviderRequest,
) -> completion_create_params.ResponseFormat | openai.Omit:
    if request.response_format is None:
        return openai.omit
    return cast(completion_create_params.ResponseFormat, request.response_format)


def _message(message: ChatMessage) -> ChatCompletionMessageParam:
    if message.role == "tool":
        if message.tool_call_id is None:
            raise upstream_error(LABEL, ErrorKind.BAD_REQUEST, "a tool message has no tool_call_id")
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content}
    if message.role == "assistant":
        assistant: ChatCompletionAssistantMessageParam = {"role": "assistant"}
        if message.tool_calls:
            assistant["content"] = message.content or None
            assistant["tool_calls"] = [_tool_call(call) for call in message.tool_calls]
        else:
            assistant["content"] = message.content
        if message.name:
            assistant["name"] = message.name
        return assistant
    if message.role == "system":
        system: ChatCompletionSystemMessageParam = {"role": "system", "content": message.content}
        if message.name:
            system["name"] = message.name
        return system
    user: ChatCompletionUserMessageParam = {"role": "user", "content": message.content}
    if message.name:
        user["name"] = message.name
    return user


def _tool_call(call: ToolCall) -> ChatCompletionMessageToolCallParam:
    return {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": call.arguments},
    }
