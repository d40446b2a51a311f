"""The event stream of an OpenAI chat completion, read without the SDK's per-chunk objects.

``chunks`` yields each ``data:`` event's JSON object up to ``[DONE]``, keeping the SDK's
behaviour where it matters: an ``error`` object inside the stream raises
``openai.APIError`` as the SDK's stream does, and what follows ``[DONE]`` is drained
briefly so the connection can be reused.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, cast

import anyio
import httpx2
import openai

DRAIN_SECONDS = 0.1  # as the SDK's stream: how long to wait for the body's end after [DONE]
STREAM_ERROR = "An error occurred during streaming"  # the SDK's message for a bare error

# What the SDK's stream reports as a connection error while it reads the body (timeouts,
# httpx2.TimeoutException, are classified before these).
READ_FAILURES = (httpx2.RequestError, ssl.SSLError, anyio.EndOfStream)


async def chunks(response: httpx2.Response) -> AsyncGenerator[dict[str, Any], None]:
    """The JSON chunks of a server-sent event stream, up to ``[DONE]``.

    An event's ``data:`` lines are joined with newlines; other fields and comments are
    ignored, and so is an event the body ends before finishing (as the SDK does). An
    ``error`` object raises ``openai.APIError``; undecodable JSON raises ``ValueError``.
    """
    data: list[str] = []
    # An async generator (typed as an iterator): closed here, not whenever it is collected.
    lines = cast(AsyncGenerator[str, None], response.aiter_lines())
    async with contextlib.aclosing(lines):
        async for line in lines:
            if line:
                field, _, value = line.partition(":")
                if field == "data":
                    data.append(value.removeprefix(" "))
                continue
            if not data:
                continue
            text = "\n".join(data)
            data.clear()
            if text.startswith("[DONE]"):
                await _drain(response, lines)
                return
            chunk = json.loads(text)
            if not isinstance(chunk, dict):
                raise ValueError(f"a stream chunk that is not an object: {text[:40]!r}")
            error = chunk.get("error")
            if error:
                message = error.get("message") if isinstance(error, dict) else None
                if not message or not isinstance(message, str):
                    message = STREAM_ERROR
                raise openai.APIError(message, response.request, body=error)
            yield chunk


async def _drain(response: httpx2.Response, lines: AsyncIterator[str]) -> None:
    """Read the rest of the body, so that HTTP/1.1 can reuse the connection.

    Normally only the end of the body follows ``[DONE]``; a server that keeps the stream
    open is given ``DRAIN_SECONDS``, after which closing the response drops the connection.
    """
    if response.http_version != "HTTP/1.1":
        return  # HTTP/2 closes the stream and keeps the connection
    with contextlib.suppress(TimeoutError, *READ_FAILURES):
        async with asyncio.timeout(DRAIN_SECONDS):
            async for _ in lines:
                pass
