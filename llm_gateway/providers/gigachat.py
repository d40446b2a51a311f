"""GigaChat (Sber): OAuth for an access token, then the v1 chat API, streamed.

A small httpx client rather than the ``gigachat`` SDK: it gives separate connect and read
timeouts, exact control over the token cache and the one re-authentication on a 401, and
sees a stream that ends without ``[DONE]`` (the SDK ends such a stream silently).

The token is cached per provider instance until 60 s before ``expires_at`` (Unix time in
milliseconds). A 401 on a cached token drops it, re-authenticates once and retries; a 401
on a token just issued is an authentication failure. GigaChat has no stop sequences, so
``stop`` is not sent. Tools, ``response_format`` and ``seed`` are not supported
(``capabilities.unsupported_params`` says so before a request gets here) and not sent.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx

from llm_gateway.providers.base import (
    ErrorKind,
    Finish,
    ProviderError,
    ProviderRequest,
    StreamEvent,
    TextDelta,
    Usage,
)
from llm_gateway.providers.errors import (
    guarded,
    kind_for_status,
    retry_after_seconds,
    upstream_error,
)

LABEL = "GigaChat"
TOKEN_REFRESH_MARGIN_MS = 60_000
# GigaChat's finish reasons that are not a plain stop, as OpenAI's.
FINISH_REASONS = {"length": "length", "blacklist": "content_filter"}


@dataclass(frozen=True, slots=True)
class _Token:
    value: str
    expires_at_ms: int

    def usable(self) -> bool:
        return self.expires_at_ms - TOKEN_REFRESH_MARGIN_MS > time.time() * 1000


class GigaChatProvider:
    """Streams replies from GigaChat, holding one OAuth token per instance."""

    name = "gigachat"

    def __init__(
        self,
        auth_key: str,
        scope: str,
        base_url: str,
        auth_url: str,
        *,
        verify_ssl: bool = True,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
    ) -> None:
        self._auth_key = auth_key
        self._scope = scope
        self._chat_url = base_url.rstrip("/") + "/chat/completions"
        self._auth_url = auth_url
        self._client = httpx.AsyncClient(
            verify=verify_ssl, timeout=httpx.Timeout(read_timeout, connect=connect_timeout)
        )
        self._token: _Token | None = None
        self._token_lock = asyncio.Lock()

    def stream(self, request: ProviderRequest) -> AsyncIterator[StreamEvent]:
        return guarded(LABEL, self._events(request), self._classify)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _events(self, request: ProviderRequest) -> AsyncGenerator[StreamEvent, None]:
        if self._client.is_closed:
            raise upstream_error(LABEL, ErrorKind.UNAVAILABLE, "the provider was shut down")
        payload = _payload(request)
        for attempt in range(2):
            token, fresh = await self._access_token()
            headers = {
                "Authorization": f"Bearer {token}",
                "Accept": "text/event-stream",
                "Cache-Control": "no-store",
            }
            async with self._client.stream(
                "POST", self._chat_url, json=payload, headers=headers
            ) as response:
                if response.status_code == 401 and not fresh and attempt == 0:
                    self._drop(token)  # revoked or expired early: one fresh token, one retry
                    continue
                if response.status_code != 200:
                    await response.aread()
                    raise self._status_error(response)
                content_type = response.headers.get("content-type", "")
                if not content_type.startswith("text/event-stream"):
                    raise upstream_error(LABEL, ErrorKind.UNAVAILABLE, "not an event stream")
                async for event in _read(response):
                    yield event
                return

    async def _access_token(self) -> tuple[str, bool]:
        """The cached token, or a new one; ``True`` when it was issued just now."""
        async with self._token_lock:
            if self._token is not None and self._token.usable():
                return self._token.value, False
            self._token = await self._authenticate()
            return self._token.value, True

    def _drop(self, value: str) -> None:
        if self._token is not None and self._token.value == value:
            self._token = None

    async def _authenticate(self) -> _Token:
        response = await self._client.post(
            self._auth_url,
            headers={
                "Authorization": f"Basic {self._auth_key}",
                "RqUID": str(uuid.uuid4()),
                "Accept": "application/json",
            },
            data={"scope": self._scope},
        )
        if response.status_code != 200:
            status = response.status_code
            # Any other refusal of the OAuth call means our key or scope is wrong.
            kind = kind_for_status(status) if status == 429 or status >= 500 else ErrorKind.AUTH
            raise upstream_error(
                LABEL,
                kind,
                "authentication failed: " + _error_text(response),
                status=status,
                retry_after=retry_after_seconds(response.headers),
                secrets=(self._auth_key,),
            )
        body = response.json()
        value = body.get("access_token") or body.get("tok")
        expires_at = body.get("expires_at") or body.get("exp")
        if not isinstance(value, str) or not isinstance(expires_at, int):
            raise upstream_error(LABEL, ErrorKind.UNAVAILABLE, "malformed token response")
        return _Token(value, expires_at)

    def _status_error(self, response: httpx.Response) -> ProviderError:
        return upstream_error(
            LABEL,
            kind_for_status(response.status_code),
            _error_text(response),
            status=response.status_code,
            retry_after=retry_after_seconds(response.headers),
            secrets=self._secrets(),
        )

    def _secrets(self) -> tuple[str, ...]:
        return (self._auth_key,) + ((self._token.value,) if self._token is not None else ())

    def _classify(self, exc: Exception) -> ProviderError | None:
        if isinstance(exc, httpx.TimeoutException):
            return upstream_error(LABEL, ErrorKind.TIMEOUT)
        if isinstance(exc, httpx.TransportError):
            return upstream_error(LABEL, ErrorKind.UNAVAILABLE, "connection failed")
        if isinstance(exc, ValueError):  # undecodable JSON
            return upstream_error(LABEL, ErrorKind.UNAVAILABLE, "malformed response")
        return None


def _payload(request: ProviderRequest) -> dict[str, Any]:
    system = [{"role": "system", "content": request.system}] if request.system is not None else []
    payload: dict[str, Any] = {
        "model": request.model,
        "messages": system + [{"role": m.role, "content": m.content} for m in request.turns],
        "stream": True,
        "max_tokens": request.max_tokens,
    }
    if request.temperature is not None:
        payload["temperature"] = request.temperature
    if request.top_p is not None:
        payload["top_p"] = request.top_p
    return payload


async def _read(response: httpx.Response) -> AsyncGenerator[StreamEvent, None]:
    """Text deltas from bare ``data:`` lines; usage rides on the finishing chunk."""
    usage: Usage | None = None
    finished = False
    reason = "stop"
    async for line in response.aiter_lines():
        if not line.startswith("data:"):
            continue
        data = line.removeprefix("data:").strip()
        if data == "[DONE]":
            finished = True
            break
        chunk = json.loads(data)
        if not isinstance(chunk, dict):
            continue
        for choice in chunk.get("choices") or []:
            content = (choice.get("delta") or {}).get("content")
            if isinstance(content, str) and content:
                yield TextDelta(content)
            if choice.get("finish_reason") == "error":
                raise upstream_error(LABEL, ErrorKind.UNAVAILABLE, "the model reported an error")
            finish_reason = choice.get("finish_reason")
            if finish_reason and not finished:
                finished = True
                reason = FINISH_REASONS.get(str(finish_reason), "stop")
        reported = chunk.get("usage")
        if isinstance(reported, dict):
            usage = Usage(int(reported["prompt_tokens"]), int(reported["completion_tokens"]))
    if not finished:
        raise upstream_error(LABEL, ErrorKind.UNAVAILABLE, "the stream ended without finishing")
    yield Finish(reason)
    if usage is not None:
        yield usage


def _error_text(response: httpx.Response) -> str:
    """The ``message`` of a GigaChat error body, else the body's text."""
    try:
        body = response.json()
    except ValueError:
        return response.text
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return str(body["message"])
    return response.text
