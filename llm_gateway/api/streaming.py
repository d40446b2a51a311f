"""The event-stream response of a streamed completion, and what happens when it is cut.

The client going away (``http.disconnect``, or a send that fails) stops the completion:
it is stored as cancelled and charged for what was produced. The server cancelling the
response (shutdown past its grace period) stops it as interrupted, charged the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from llm_gateway.services.chat.completions.records import Result
from llm_gateway.services.chat.completions.running import CompletionRun

HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),  # proxies must not hold the stream back
]


class EventStream(Response):
    """Sends ``chunks`` as they come; ``run`` (when live) is stopped if the stream is cut.

    Cancelled by the server (shutdown past its grace period), it stops the run, sends
    ``end`` of its stored result (an error event) and ends the body properly, so the
    client gets an honest end rather than a broken connection.
    """

    def __init__(
        self,
        chunks: AsyncIterator[bytes],
        run: CompletionRun | None,
        end: Callable[[Result], bytes] | None = None,
    ) -> None:
        super().__init__(status_code=200)
        self._chunks = chunks
        self._run = run
        self._end = end
        self.raw_headers = [
            *HEADERS,
            *((k, v) for k, v in self.raw_headers if k != b"content-length"),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        watcher = asyncio.create_task(self._watch(receive))
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            async with contextlib.aclosing(self._chunks):  # type: ignore[type-var]
                async for chunk in self._chunks:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:  # the client is gone (ASGI 2.4 raises on send)
            await self._stop("disconnect")
        except asyncio.CancelledError:
            await self._stop("shutdown")
            result = self._run.result if self._run is not None else None
            if result is None or self._end is None:
                raise
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()  # the cancellation is handled: the stream ends cleanly
            with contextlib.suppress(OSError):
                await send(
                    {"type": "http.response.body", "body": self._end(result), "more_body": True}
                )
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    async def _watch(self, receive: Receive) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                await self._stop("disconnect")
                return

    async def _stop(self, reason: str) -> None:
        if self._run is not None:
            await self._run.stop(reason)
