"""A fake GigaChat: the OAuth endpoint (``/api/v2/oauth``) and chat (``/api/v1/chat/completions``).

Tokens live ``token_ttl_ms`` (30 minutes by default) and ``expires_at`` is in milliseconds,
as the real service does. Chat requests need a live Bearer token, else 401
``{"status":401,"message":"Unauthorized"}``; ``revoke_tokens()`` makes every issued token
stale at once (the next chat request gets that 401).
"""

from __future__ import annotations

import time
import uuid
from collections import deque
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
    sse,
)

DEFAULT_GIGACHAT_AUTH_KEY = "ZmFrZS1jbGllbnQtaWQ6ZmFrZS1jbGllbnQtc2VjcmV0LTAxMjM0NTY3ODk="
DEFAULT_GIGACHAT_SCOPE = "GIGACHAT_API_PERS"
TOKEN_TTL_MS = 30 * 60 * 1000
OAUTH_PATH = "/api/v2/oauth"
CHAT_PATH = "/api/v1/chat/completions"

_MESSAGES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "No such model",
    413: "Payload Too Large",
    422: "Invalid params",
    429: "Too many requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class GigaChatFake(FakeUpstream):
    """OAuth + chat for one authorization key and scope."""

    api_prefix = "/api/v1"
    chat_path = CHAT_PATH

    def __init__(
        self,
        auth_key: str = DEFAULT_GIGACHAT_AUTH_KEY,
        scope: str = DEFAULT_GIGACHAT_SCOPE,
        *,
        token_ttl_ms: int = TOKEN_TTL_MS,
    ) -> None:
        self.auth_key = auth_key
        self.scope = scope
        self.initial_token_ttl_ms = token_ttl_ms
        super().__init__()
        self.app = Starlette(
            routes=[
                Route(OAUTH_PATH, self._oauth, methods=["POST"]),
                Route(CHAT_PATH, self._chat, methods=["POST"]),
            ]
        )

    def reset(self) -> None:
        super().reset()
        self.token_ttl_ms = self.initial_token_ttl_ms
        self.tokens: dict[str, int] = {}  # issued access token -> expires_at (ms)
        self._oauth_scenarios: deque[Scenario] = deque()

    @property
    def auth_url(self) -> str:
        return self.url + OAUTH_PATH

    @property
    def oauth_requests(self) -> list[RecordedRequest]:
        return self.requests_to(OAUTH_PATH)

    def script_oauth(self, *scenarios: Scenario) -> None:
        """Queue answers for the next OAuth calls (only ``status``, errors and delays apply)."""
        self._oauth_scenarios.extend(scenarios)

    def revoke_tokens(self) -> None:
        """Forget every issued token, as if they had all expired server-side."""
        self.tokens.clear()

    async def _oauth(self, request: Request) -> Response:
        recorded = await self.record(request)
        headers = recorded.headers
        if headers.get("authorization") != f"Basic {self.auth_key}":
            return _oauth_error(401, 6, "credentials doesn't match db data")
        try:
            uuid.UUID(headers.get("rquid", ""))
        except ValueError:
            return _oauth_error(400, 5, "RqUID header must be a UUID4")
        if not headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return _oauth_error(400, 4, "Content-Type must be application/x-www-form-urlencoded")
        if recorded.form.get("scope") != self.scope:
            return _oauth_error(400, 7, "scope from db not fully includes consumed scope")
        if self._oauth_scenarios:
            scenario = self._oauth_scenarios.popleft()
            await self.delay(scenario, request)
            if scenario.status != 200:
                message = scenario.error_message or _MESSAGES.get(scenario.status, "Error")
                return _oauth_error(scenario.status, 0, message, scenario.error_headers())
        token = f"giga-token-{uuid.uuid4().hex}"
        expires_at = int(time.time() * 1000) + self.token_ttl_ms
        self.tokens[token] = expires_at
        return JSONResponse({"access_token": token, "expires_at": expires_at})

    def _authorized(self, headers: dict[str, str]) -> bool:
        value = headers.get("authorization", "")
        expires_at = (
            self.tokens.get(value.removeprefix("Bearer ")) if value.startswith("Bearer ") else None
        )
        return expires_at is not None and expires_at > time.time() * 1000

    async def _chat(self, request: Request) -> Response:
        recorded = await self.record(request)
        if not self._authorized(recorded.headers):
            return self.error(Scenario(status=401))
        body = recorded.json
        messages = body.get("messages") or []
        if not body.get("model") or not messages:
            return self.error(Scenario(status=400, error_message="Invalid params: model, messages"))
        if any(m.get("role") == "system" for m in messages[1:]):
            text = "Invalid params: system message must be the first message"
            return self.error(Scenario(status=422, error_message=text))
        scenario = self.next_scenario()
        await self.delay(scenario, request)
        if scenario.status != 200:
            return self.error(scenario)
        model = f"{body['model']}:2.0.28.2"
        if body.get("stream"):
            return self._stream(scenario, model)
        choice = {
            "message": {"role": "assistant", "content": scenario.text},
            "index": 0,
            "finish_reason": scenario.finish_reason or "stop",
        }
        reply: dict[str, Any] = {**_envelope(model), "choices": [choice]}
        if scenario.usage:
            reply["usage"] = _usage(scenario)
        return JSONResponse(reply, headers={"x-request-id": str(uuid.uuid4())})

    def error(self, scenario: Scenario) -> JSONResponse:
        message = scenario.error_message or _MESSAGES.get(scenario.status, "Error")
        headers = {"x-request-id": str(uuid.uuid4()), **scenario.error_headers()}
        body = {"status": scenario.status, "message": message}
        return JSONResponse(body, status_code=scenario.status, headers=headers)

    def _stream(self, scenario: Scenario, model: str) -> Response:
        if scenario.cut == "error" and scenario.cut_after is not None:
            raise NotImplementedError("GigaChat has no documented mid-stream error event")
        frames: list[Frame] = []
        for index, piece in enumerate(scenario.streamed()):
            delta = {"content": piece, "role": "assistant"} if index == 0 else {"content": piece}
            chunk = {**_envelope(model), "choices": [{"delta": delta, "index": 0}]}
            frames.append(Frame(sse(chunk), scenario.delay_before(index)))
        headers = {"x-request-id": str(uuid.uuid4()), "cache-control": "no-cache"}
        if scenario.cut_after is not None:
            return self.event_stream(frames, headers, abort=scenario.cut == "abort")
        reason = scenario.finish_reason or "stop"
        finish = {"delta": {"content": ""}, "index": 0, "finish_reason": reason}
        last: dict[str, Any] = {**_envelope(model), "choices": [finish]}
        if scenario.usage:
            last["usage"] = _usage(scenario)
        frames += [Frame(sse(last)), Frame(sse("[DONE]"))]
        return self.event_stream(frames, headers)


def _envelope(model: str) -> dict[str, Any]:
    return {"created": int(time.time()), "model": model, "object": "chat.completion"}


def _usage(scenario: Scenario) -> dict[str, int]:
    return {
        "prompt_tokens": scenario.prompt_tokens,
        "completion_tokens": scenario.completion_tokens,
        "total_tokens": scenario.prompt_tokens + scenario.completion_tokens,
        "precached_prompt_tokens": 0,
    }


def _oauth_error(
    status: int, code: int, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"code": code, "message": message}, status_code=status, headers=headers)


@asynccontextmanager
async def fake_gigachat(
    auth_key: str = DEFAULT_GIGACHAT_AUTH_KEY,
    scope: str = DEFAULT_GIGACHAT_SCOPE,
    *,
    token_ttl_ms: int = TOKEN_TTL_MS,
) -> AsyncIterator[GigaChatFake]:
    """Run a GigaChat fake: ``base_url`` ends in ``/api/v1``; ``auth_url`` is the OAuth URL."""
    fake = GigaChatFake(auth_key, scope, token_ttl_ms=token_ttl_ms)
    async with fake.running(fake.app):
        yield fake
