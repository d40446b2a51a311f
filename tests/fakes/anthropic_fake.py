"""A fake Anthropic Messages server (``/v1/messages``, ``/v1/messages/count_tokens``).

Accepts the key as ``x-api-key`` (the documented header) or ``Authorization: Bearer``
(what anthropic 2.x sends), requires ``anthropic-version``, streams with ``event:`` lines.
Scripted tool calls stream as the API streams them: after the text block, one ``tool_use``
content block per call (``content_block_start`` with an empty ``input``, an empty then the
scripted ``input_json_delta`` pieces, ``content_block_stop``), then ``stop_reason``
``tool_use``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.base import (
    FakeUpstream,
    Frame,
    RecordedRequest,
    Scenario,
    new_id,
    sse,
)

DEFAULT_ANTHROPIC_KEY = "sk-ant-fake-0123456789abcdefghijklmnopqrstuvwxyz"

_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    402: ("billing_error", "Your credit balance is too low."),
    403: ("permission_error", "Your API key does not have permission to use this resource."),
    404: ("not_found_error", "The requested resource could not be found."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of requests has exceeded your per-minute rate limit."),
    500: ("api_error", "Internal server error"),
    529: ("overloaded_error", "Overloaded"),
}


class AnthropicFake(FakeUpstream):
    """Serves the Messages API for one API key; ``base_url`` is the bare origin."""

    chat_path = "/v1/messages"

    def __init__(self, api_key: str = DEFAULT_ANTHROPIC_KEY) -> None:
        super().__init__()
        self.api_key = api_key
        self.app = Starlette(
            routes=[
                Route("/v1/messages", self._messages, methods=["POST"]),
                Route("/v1/messages/count_tokens", self._count_tokens, methods=["POST"]),
            ]
        )

    def _refusal(self, recorded: RecordedRequest) -> JSONResponse | None:
        headers = recorded.headers
        if self.api_key not in (headers.get("x-api-key"), _bearer(headers)):
            return self.error(Scenario(status=401))
        if not headers.get("anthropic-version"):
            message = "anthropic-version: header is required"
            return self.error(Scenario(status=400, error_message=message))
        body = recorded.json
        for message in body.get("messages") or []:
            if message.get("role") not in ("user", "assistant"):
                role = message.get("role")
                text = f'messages: Unexpected role "{role}". Use the top-level `system` parameter.'
                return self.error(Scenario(status=400, error_message=text))
        if not body.get("model") or not body.get("messages"):
            return self.error(Scenario(status=400, error_message="model: Field required"))
        unpaired = _unpaired_tool_use(body["messages"])
        if unpaired is not None:
            return self.error(Scenario(status=400, error_message=unpaired))
        return None

    async def _count_tokens(self, request: Request) -> Response:
        recorded = await self.record(request)
        refusal = self._refusal(recorded)
        if refusal is not None:
            return refusal
        body = recorded.json
        texts = [str(m.get("content")) for m in body["messages"]] + [str(body.get("system", ""))]
        return JSONResponse({"input_tokens": sum(len(t) // 4 + 1 for t in texts)})

    async def _messages(self, request: Request) -> Response:
        recorded = await self.record(request)
        refusal = self._refusal(recorded)
        if refusal is not None:
            return refusal
        body = recorded.json
        if not isinstance(body.get("max_tokens"), int):
            return self.error(Scenario(status=400, error_message="max_tokens: Field required"))
        scenario = self.next_scenario()
        await self.delay(scenario, request)
        if scenario.status != 200:
            return self.error(scenario, model=body["model"])
        if body.get("stream"):
            return self._stream(scenario, body["model"])
        content: list[dict[str, Any]] = [{"type": "text", "text": scenario.text}]
        if scenario.tool_calls:
            content = content if scenario.text else []
            content += [
                {
                    "type": "tool_use",
                    "id": new_id("toolu_"),
                    "name": name,
                    "input": json.loads(args),
                }
                for name, args in scenario.tool_calls
            ]
        return JSONResponse(
            {
                **_message(body["model"]),
                "content": content,
                "stop_reason": _stop_reason(scenario),
                "usage": {**_input_usage(scenario), **_output_usage(scenario)},
            },
            headers={"request-id": new_id("req_")},
        )

    def error(self, scenario: Scenario, model: str = "") -> JSONResponse:
        kind, message = _ERRORS.get(
            scenario.status,
            ("api_error", "Internal server error")
            if scenario.status >= 500
            else ("invalid_request_error", "Invalid request."),
        )
        if scenario.status == 404 and model:
            message = f"model: {model}"
        request_id = new_id("req_")
        body = {
            "type": "error",
            "error": {
                "type": scenario.error_type or kind,
                "message": scenario.error_message or message,
            },
            "request_id": request_id,
        }
        headers = {"request-id": request_id, **scenario.error_headers()}
        return JSONResponse(body, status_code=scenario.status, headers=headers)

    def _stream(self, scenario: Scenario, model: str) -> Response:
        start = {
            **_message(model),
            "content": [],
            "stop_reason": None,
            "usage": {**_input_usage(scenario), "output_tokens": 1},
        }
        text = scenario.streamed_text()
        has_text = bool(text) or not scenario.tool_calls
        frames = [Frame(sse({"type": "message_start", "message": start}, "message_start"))]
        if has_text:
            frames.append(
                Frame(
                    sse(
                        {
                            "type": "content_block_start",
                            "index": 0,
                            "content_block": {"type": "text", "text": ""},
                        },
                        "content_block_start",
                    )
                )
            )
        frames.append(Frame(sse({"type": "ping"}, "ping")))
        for index, piece in enumerate(text):
            delta = {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": piece},
            }
            frames.append(Frame(sse(delta, "content_block_delta"), scenario.delay_before(index)))
        headers = {"request-id": new_id("req_"), "cache-control": "no-cache"}
        if scenario.cut_after is not None:
            if scenario.cut == "error":
                error = {
                    "type": scenario.error_type or "overloaded_error",
                    "message": scenario.error_message or "Overloaded",
                }
                frames.append(Frame(sse({"type": "error", "error": error}, "error")))
            return self.event_stream(frames, headers, abort=scenario.cut == "abort")
        message_delta: dict[str, Any] = {
            "type": "message_delta",
            "delta": {"stop_reason": _stop_reason(scenario), "stop_sequence": None},
        }
        if scenario.usage:
            # Cumulative, as the API sends them: the input counts again, the output's total.
            message_delta["usage"] = {**_input_usage(scenario), **_output_usage(scenario)}
        if has_text:
            frames.append(
                Frame(sse({"type": "content_block_stop", "index": 0}, "content_block_stop"))
            )
        for block, (name, arguments) in enumerate(scenario.tool_calls, start=int(has_text)):
            frames += _tool_use_frames(scenario, block, name, arguments)
        frames += [
            Frame(sse(message_delta, "message_delta")),
            Frame(sse({"type": "message_stop"}, "message_stop")),
        ]
        return self.event_stream(frames, headers)


def _unpaired_tool_use(messages: list[dict[str, Any]]) -> str | None:
    """What the API says when tool_use and tool_result blocks do not pair up, else None.

    Every ``tool_use`` of an assistant message needs a ``tool_result`` at the start of the
    next (user) message, and every ``tool_result`` answers one of those.
    """
    asked: set[str] = set()
    for number, message in enumerate(messages):
        content = message.get("content")
        blocks = content if isinstance(content, list) else []
        kinds = [block.get("type") for block in blocks]
        answered = {b.get("tool_use_id") for b in blocks if b.get("type") == "tool_result"}
        if message.get("role") == "user":
            if answered - asked:
                return f"messages.{number}: unexpected `tool_use_id` found in `tool_result` blocks"
            if asked - answered:
                return f"messages.{number}: `tool_use` ids were found without `tool_result` blocks"
            if "tool_result" in kinds[len(answered) :]:
                return f"messages.{number}: `tool_result` blocks must come first"
            asked = set()
        else:
            if asked:
                return f"messages.{number}: `tool_use` ids were found without `tool_result` blocks"
            asked = {b.get("id") for b in blocks if b.get("type") == "tool_use"}
    return None


def _tool_use_frames(scenario: Scenario, block: int, name: str, arguments: str) -> list[Frame]:
    """One streamed ``tool_use`` block; the API opens its input with an empty delta."""
    tool_use = {"type": "tool_use", "id": new_id("toolu_"), "name": name, "input": {}}
    start = {"type": "content_block_start", "index": block, "content_block": tool_use}
    frames = [Frame(sse(start, "content_block_start"), scenario.chunk_delay)]
    for piece in ["", *scenario.argument_pieces(arguments)]:
        delta = {
            "type": "content_block_delta",
            "index": block,
            "delta": {"type": "input_json_delta", "partial_json": piece},
        }
        frames.append(Frame(sse(delta, "content_block_delta"), scenario.chunk_delay))
    stop = {"type": "content_block_stop", "index": block}
    frames.append(Frame(sse(stop, "content_block_stop")))
    return frames


def _input_usage(scenario: Scenario) -> dict[str, int]:
    """Anthropic's input counts: ``input_tokens`` leaves out the cache's reads and writes."""
    cached = scenario.cache_read_tokens + scenario.cache_write_tokens
    return {
        "input_tokens": scenario.prompt_tokens - cached,
        "cache_creation_input_tokens": scenario.cache_write_tokens,
        "cache_read_input_tokens": scenario.cache_read_tokens,
    }


def _output_usage(scenario: Scenario) -> dict[str, Any]:
    usage: dict[str, Any] = {"output_tokens": scenario.completion_tokens}
    if scenario.reasoning_tokens:  # with extended thinking on
        usage["output_tokens_details"] = {"thinking_tokens": scenario.reasoning_tokens}
    return usage


def _stop_reason(scenario: Scenario) -> str:
    if scenario.finish_reason:
        return scenario.finish_reason
    return "tool_use" if scenario.tool_calls else "end_turn"


def _bearer(headers: dict[str, str]) -> str | None:
    value = headers.get("authorization", "")
    return value.removeprefix("Bearer ") if value.startswith("Bearer ") else None


def _message(model: str) -> dict[str, Any]:
    return {
        "id": new_id("msg_"),
        "type": "message",
        "role": "assistant",
        "model": model,
        "stop_sequence": None,
    }


@asynccontextmanager
async def fake_anthropic(api_key: str = DEFAULT_ANTHROPIC_KEY) -> AsyncIterator[AnthropicFake]:
    """Run an Anthropic fake on a free loopback port: ``base_url`` is the origin."""
    fake = AnthropicFake(api_key)
    async with fake.running(fake.app):
        yield fake
