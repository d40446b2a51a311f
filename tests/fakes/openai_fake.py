"""A fake OpenAI Chat Completions server (``/v1/chat/completions``), streaming included.

Also what vLLM, Ollama and llama.cpp speak, so the OpenAI adapter's fake covers them too.
Scripted tool calls stream as OpenAI streams them: the first fragment of call ``i`` carries
``index``, ``id``, ``type`` and the function's name with empty arguments (riding on the
role chunk when there is no text), later fragments only ``index`` and a piece of the
arguments; the finish reason is then ``tool_calls``.
"""

from __future__ import annotations

import time
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
    Scenario,
    new_id,
    sse,
)

DEFAULT_OPENAI_KEY = "sk-fake-openai-0123456789abcdefghijklmnopqrstuv"

_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("invalid_request_error", "unsupported_country_region_territory", "Forbidden."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist."),
    413: ("invalid_request_error", None, "Request too large."),
    422: ("invalid_request_error", None, "Unprocessable request."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests."),
    500: ("server_error", None, "The server had an error processing your request."),
    503: ("server_error", None, "That model is currently overloaded with other requests."),
}


def _masked(key: str) -> str:
    return f"{key[:6]}***{key[-4:]}" if len(key) > 10 else "***"


class OpenAIFake(FakeUpstream):
    """Serves ``POST /v1/chat/completions`` (JSON and SSE) for one API key."""

    api_prefix = "/v1"
    chat_path = "/v1/chat/completions"

    def __init__(self, api_key: str = DEFAULT_OPENAI_KEY) -> None:
        super().__init__()
        self.api_key = api_key
        self.app = Starlette(routes=[Route(self.chat_path, self._chat, methods=["POST"])])

    async def _chat(self, request: Request) -> Response:
        recorded = await self.record(request)
        if recorded.headers.get("authorization") != f"Bearer {self.api_key}":
            presented = recorded.headers.get("authorization", "").removeprefix("Bearer ")
            message = f"Incorrect API key provided: {_masked(presented)}."
            return self.error(Scenario(status=401, error_message=message))
        body = recorded.json
        if not body.get("model") or not body.get("messages"):
            return self.error(Scenario(status=400, error_message="model and messages are required"))
        unanswered = _tool_message_error(body["messages"])
        if unanswered is not None:
            return self.error(Scenario(status=400, error_message=unanswered))
        scenario = self.next_scenario()
        await self.delay(scenario, request)
        if scenario.status != 200:
            return self.error(scenario, model=body["model"])
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return self._stream(scenario, body["model"], include_usage=include_usage)
        return self._completion(scenario, body["model"])

    def error(self, scenario: Scenario, model: str = "") -> JSONResponse:
        kind, code, message = _ERRORS.get(
            scenario.status,
            ("server_error" if scenario.status >= 500 else "invalid_request_error", None, "Error."),
        )
        if scenario.status == 404 and model:
            message = f"The model `{model}` does not exist or you do not have access to it."
        body = {
            "error": {
                "message": scenario.error_message or message,
                "type": scenario.error_type or kind,
                "param": None,
                "code": code,
            }
        }
        headers = {"x-request-id": new_id("req_"), **scenario.error_headers()}
        return JSONResponse(body, status_code=scenario.status, headers=headers)

    def _completion(self, scenario: Scenario, model: str) -> JSONResponse:
        message: dict[str, Any] = {"role": "assistant", "content": scenario.text, "refusal": None}
        if scenario.tool_calls:
            message["content"] = scenario.text or None
            message["tool_calls"] = [
                {"id": call_id, "type": "function", "function": {"name": name, "arguments": args}}
                for call_id, (name, args) in zip(
                    _call_ids(scenario), scenario.tool_calls, strict=True
                )
            ]
        body = {
            "id": new_id("chatcmpl-"),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": "fp_fake",
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": _finish_reason(scenario),
                }
            ],
            "usage": _usage(scenario) if scenario.usage else None,
        }
        return JSONResponse(body, headers={"x-request-id": new_id("req_")})

    def _stream(self, scenario: Scenario, model: str, *, include_usage: bool) -> Response:
        base = {
            "id": new_id("chatcmpl-"),
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": "fp_fake",
        }
        extra: dict[str, Any] = {"usage": None} if include_usage else {}

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            return sse({**base, "choices": [choice], **extra})

        text = scenario.streamed_text()
        headers = [
            {
                "index": index,
                "id": call_id,
                "type": "function",
                "function": {"name": name, "arguments": ""},
            }
            for index, (call_id, (name, _)) in enumerate(
                zip(_call_ids(scenario), scenario.tool_calls, strict=True)
            )
        ]
        role: dict[str, Any] = {"role": "assistant", "content": "", "refusal": None}
        if headers and not text and scenario.cut_after is None:
            role = {
                "role": "assistant",
                "content": None,
                "tool_calls": [headers[0]],
                "refusal": None,
            }
        frames = [Frame(chunk(role))]
        frames += [
            Frame(chunk({"content": piece}), scenario.delay_before(index))
            for index, piece in enumerate(text)
        ]
        if scenario.cut_after is not None:
            if scenario.cut == "error":
                message = scenario.error_message or "The server had an error while processing."
                error = {"message": message, "type": scenario.error_type or "server_error"}
                frames.append(Frame(sse({"error": {**error, "param": None, "code": None}})))
            return self.event_stream(frames, _headers(), abort=scenario.cut == "abort")
        for index, (_, arguments) in enumerate(scenario.tool_calls):
            if index or text:
                frames.append(Frame(chunk({"tool_calls": [headers[index]]}), scenario.chunk_delay))
            frames += [
                Frame(
                    chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}),
                    scenario.chunk_delay,
                )
                for piece in scenario.argument_pieces(arguments)
            ]
        frames.append(Frame(chunk({}, _finish_reason(scenario))))
        if include_usage and scenario.usage:
            frames.append(Frame(sse({**base, "choices": [], "usage": _usage(scenario)})))
        frames.append(Frame(sse("[DONE]")))
        return self.event_stream(frames, _headers())


def _headers() -> dict[str, str]:
    return {"x-request-id": new_id("req_"), "cache-control": "no-cache"}


def _tool_message_error(messages: list[dict[str, Any]]) -> str | None:
    """What the API says when tool messages do not answer the preceding tool calls."""
    pending: set[str] = set()
    for number, message in enumerate(messages):
        if message.get("role") == "tool":
            if message.get("tool_call_id") not in pending:
                return (
                    f"Invalid parameter: messages[{number}]: messages with role 'tool' must be "
                    "a response to a preceeding message with 'tool_calls'."
                )
            pending.discard(message["tool_call_id"])
            continue
        if pending:
            return (
                "An assistant message with 'tool_calls' must be followed by tool messages "
                f"responding to each 'tool_call_id'. Missing: {', '.join(sorted(pending))}"
            )
        if message.get("role") == "assistant":
            pending = {call.get("id") for call in message.get("tool_calls") or []}
    return None


def _call_ids(scenario: Scenario) -> list[str]:
    return [new_id("call_") for _ in scenario.tool_calls]


def _finish_reason(scenario: Scenario) -> str:
    if scenario.finish_reason:
        return scenario.finish_reason
    return "tool_calls" if scenario.tool_calls else "stop"


def _usage(scenario: Scenario) -> dict[str, Any]:
    """OpenAI's usage: cached tokens are counted inside ``prompt_tokens`` (OpenAI writes to
    its cache without saying so), reasoning tokens inside ``completion_tokens``."""
    return {
        "prompt_tokens": scenario.prompt_tokens,
        "completion_tokens": scenario.completion_tokens,
        "total_tokens": scenario.prompt_tokens + scenario.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": scenario.cache_read_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": scenario.reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


@asynccontextmanager
async def fake_openai(api_key: str = DEFAULT_OPENAI_KEY) -> AsyncIterator[OpenAIFake]:
    """Run an OpenAI fake on a free loopback port: ``base_url`` ends in ``/v1``."""
    fake = OpenAIFake(api_key)
    async with fake.running(fake.app):
        yield fake
