"""Turning upstream failures into ``ProviderError`` with messages safe to show a user.

Every adapter classifies the same way: by HTTP status when there is one, by the provider's
error type for errors that arrive inside a 200 stream, and by transport failure otherwise.
``guarded`` wraps an adapter's raw event stream so that any failure after the first text
or tool-call delta becomes ``STREAM_CUT`` (the deltas already yielded stay yielded): a reply
the user has partly seen must not be retried or billed as if nothing had been said.
"""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Mapping
from contextlib import aclosing

from llm_gateway.providers.base import (
    ErrorKind,
    ProviderError,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
)

MAX_DETAIL_CHARS = 200
REDACTED = "[redacted]"

# Anything that looks like a credential: auth header values, sk-… keys (masked or not),
# JWT/JWE tokens, and long opaque runs of key alphabet.
_KEY_LIKE = re.compile(
    r"(?i:\b(?:bearer|basic)\s+)[A-Za-z0-9._~+/=*-]+"
    r"|\bsk-[A-Za-z0-9_*.…-]{4,}"
    r"|\beyJ[A-Za-z0-9_-]{8,}(?:\.[A-Za-z0-9_-]*)*"
    r"|[A-Za-z0-9+/_=-]{32,}"
)

_SUMMARY = {
    ErrorKind.RATE_LIMITED: "rate limit reached",
    ErrorKind.UNAVAILABLE: "service unavailable",
    ErrorKind.TIMEOUT: "no answer in time",
    ErrorKind.AUTH: "credentials were rejected",
    ErrorKind.MODEL_NOT_FOUND: "model not found",
    ErrorKind.BAD_REQUEST: "request refused",
    ErrorKind.STREAM_CUT: "the reply was cut off",
}

# Error types reported in a body (Anthropic's ``error.type``, OpenAI's ``error.type``/``code``).
_TYPE_KINDS = {
    "rate_limit_error": ErrorKind.RATE_LIMITED,
    "rate_limit_exceeded": ErrorKind.RATE_LIMITED,
    "requests": ErrorKind.RATE_LIMITED,
    "tokens": ErrorKind.RATE_LIMITED,
    "overloaded_error": ErrorKind.UNAVAILABLE,
    "api_error": ErrorKind.UNAVAILABLE,
    "server_error": ErrorKind.UNAVAILABLE,
    "timeout_error": ErrorKind.TIMEOUT,
    "authentication_error": ErrorKind.AUTH,
    "permission_error": ErrorKind.AUTH,
    "billing_error": ErrorKind.AUTH,
    "not_found_error": ErrorKind.MODEL_NOT_FOUND,
    "model_not_found": ErrorKind.MODEL_NOT_FOUND,
    "invalid_request_error": ErrorKind.BAD_REQUEST,
    "request_too_large": ErrorKind.BAD_REQUEST,
}


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` without credentials, on one line, at most ``MAX_DETAIL_CHARS`` long."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    text = " ".join(_KEY_LIKE.sub(REDACTED, text).split())
    if len(text) > MAX_DETAIL_CHARS:
        text = text[: MAX_DETAIL_CHARS - 1].rstrip() + "…"
    return text


def kind_for_status(status: int) -> ErrorKind:
    if status == 429:
        return ErrorKind.RATE_LIMITED
    if status in (401, 402, 403):  # 402: the provider account cannot pay — an operator problem
        return ErrorKind.AUTH
    if status == 404:
        return ErrorKind.MODEL_NOT_FOUND
    if status == 408:
        return ErrorKind.TIMEOUT
    if status == 409 or status >= 500:  # 409: the SDKs retry it as transient
        return ErrorKind.UNAVAILABLE
    return ErrorKind.BAD_REQUEST


def kind_for_type(*error_types: str | None) -> ErrorKind:
    """The kind of an error known by type/code only (e.g. an error event inside a 200 stream).

    The first type we know decides; unknown ones count as the provider being unavailable.
    """
    for error_type in error_types:
        if error_type in _TYPE_KINDS:
            return _TYPE_KINDS[error_type]
    return ErrorKind.UNAVAILABLE


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """The server's retry hint: ``retry-after-ms``, else ``retry-after`` (seconds or HTTP date)."""
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def upstream_error(
    label: str,
    kind: ErrorKind,
    detail: str | None = None,
    *,
    status: int | None = None,
    retry_after: float | None = None,
    secrets: Iterable[str] = (),
) -> ProviderError:
    """A ``ProviderError`` whose message names the provider and the failure, key-free."""
    where = f" (HTTP {status})" if status is not None and status != 200 else ""
    message = f"{label}: {_SUMMARY[kind]}{where}"
    clean = redact(detail, secrets) if detail else ""
    if clean:
        message += f": {clean}"
    return ProviderError(kind, message, status=status, retry_after=retry_after)


def cut_off(label: str, cause: ProviderError) -> ProviderError:
    """The failure of a stream that had already produced text."""
    reason = cause.message.removeprefix(f"{label}: ")
    return ProviderError(
        ErrorKind.STREAM_CUT, f"{label}: the reply was cut off ({reason})", status=cause.status
    )


Classifier = Callable[[Exception], ProviderError | None]


async def guarded(
    label: str, events: AsyncGenerator[StreamEvent, None], classify: Classifier
) -> AsyncIterator[StreamEvent]:
    """Run an adapter's raw stream, turning what ``classify`` knows into ``ProviderError``.

    Exceptions ``classify`` does not recognise (bugs) propagate unchanged. Closing this
    generator closes ``events``, which closes the HTTP response.
    """
    started = False
    async with aclosing(events):
        try:
            async for event in events:
                started = started or isinstance(event, (TextDelta, ToolCallDelta))
                yield event
        except Exception as exc:
            error = exc if isinstance(exc, ProviderError) else classify(exc)
            if error is None:
                raise
            if started and error.kind is not ErrorKind.STREAM_CUT:
                error = cut_off(label, error)
            if error is exc:
                raise
            raise error from exc
