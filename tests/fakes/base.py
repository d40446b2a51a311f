"""What every fake upstream shares: scenarios, request recording, scripted streaming.

A fake is a small Starlette app served by uvicorn on 127.0.0.1 (``tests.live.serve_asgi``).
Each request to a chat endpoint takes the next ``Scenario`` from the fake's queue (or the
fake's ``default`` when the queue is empty), so a test scripts exactly what the real SDK
will see: an error status with the provider's own error body, delays, a stream cut after
K chunks, a missing usage report.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal, Self
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from tests.live import LiveServer, serve_asgi

DEFAULT_REPLY = "Hello from the fake upstream!"

Cut = Literal["abort", "end", "error"]


@dataclass(frozen=True, slots=True)
class Scenario:
    """How the fake answers one request.

    ``status`` other than 200 answers with the provider's error envelope (``error_type`` and
    ``error_message`` override the per-status defaults; ``retry_after`` / ``retry_after_ms``
    become headers). A 200 streams ``text`` in ``chunks`` pieces with ``chunk_delay`` between
    them (the token rate). ``first_byte_delay`` holds back the response headers themselves.

    ``cut_after=K`` breaks the stream after K text chunks, as ``cut`` says:
    ``"abort"`` drops the TCP connection mid-body (no terminating chunk), ``"end"`` ends the
    HTTP response cleanly but without the protocol's finish/usage/terminator, ``"error"``
    sends the provider's mid-stream error event (OpenAI and Anthropic only).

    ``tool_calls`` scripts function calls after the text, as ``(name, arguments JSON)``
    pairs: each call's arguments stream in ``tool_chunks`` pieces in the provider's own
    format (OpenAI and Anthropic), and the finish reason becomes the provider's "tool
    call" one unless ``finish_reason`` says otherwise. With tool calls an empty ``text``
    sends no text at all; a cut (``cut_after``) happens before any tool call is sent.

    ``prompt_tokens`` counts every input token and ``completion_tokens`` every output
    token, as the gateway does; each fake reports them as its provider does. Of the input,
    ``cache_read_tokens`` were read from the prompt cache and ``cache_write_tokens``
    written to it (OpenAI: ``prompt_tokens_details.cached_tokens`` inside its
    ``prompt_tokens``, no writes; Anthropic: ``cache_read_input_tokens`` and
    ``cache_creation_input_tokens`` beside an ``input_tokens`` that leaves both out). Of
    the output, ``reasoning_tokens`` were spent reasoning (OpenAI's
    ``completion_tokens_details.reasoning_tokens``; Anthropic's
    ``output_tokens_details.thinking_tokens``, sent only when not 0).
    """

    text: str = DEFAULT_REPLY
    chunks: int = 3
    first_byte_delay: float = 0.0
    chunk_delay: float = 0.0
    status: int = 200
    error_type: str | None = None
    error_message: str | None = None
    retry_after: str | None = None
    retry_after_ms: int | None = None
    cut_after: int | None = None
    cut: Cut = "abort"
    usage: bool = True
    prompt_tokens: int = 11
    completion_tokens: int = 7
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    finish_reason: str | None = None
    tool_calls: tuple[tuple[str, str], ...] = ()
    tool_chunks: int = 3

    def pieces(self) -> list[str]:
        """``text`` split into ``chunks`` contiguous, non-empty pieces (fewer if it is short)."""
        count = max(1, min(self.chunks, len(self.text)))
        size = len(self.text)
        return [self.text[i * size // count : (i + 1) * size // count] for i in range(count)]

    def streamed(self) -> list[str]:
        """The pieces sent before the stream finishes (or, with ``cut_after``, breaks)."""
        pieces = self.pieces()
        return pieces if self.cut_after is None else pieces[: self.cut_after]

    def streamed_text(self) -> list[str]:
        """``streamed()``, but nothing for an empty text beside tool calls."""
        if self.tool_calls and not self.text:
            return []
        return self.streamed()

    def argument_pieces(self, arguments: str) -> list[str]:
        """A tool call's ``arguments`` in ``tool_chunks`` contiguous pieces (fewer if short)."""
        count = max(1, min(self.tool_chunks, len(arguments)))
        size = len(arguments)
        return [arguments[i * size // count : (i + 1) * size // count] for i in range(count)]

    def delay_before(self, index: int) -> float:
        """The pause before text piece ``index``: none before the first, then the rate."""
        return self.chunk_delay if index else 0.0

    def error_headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self.retry_after is not None:
            headers["retry-after"] = self.retry_after
        if self.retry_after_ms is not None:
            headers["retry-after-ms"] = str(self.retry_after_ms)
        return headers


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request the fake received, as it arrived."""

    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode()))


@dataclass(frozen=True, slots=True)
class Frame:
    """One piece of a streamed body; ``delay`` is awaited before it is sent."""

    data: bytes
    delay: float = 0.0


class ScriptedStream(Response):
    """A streamed body sent frame by frame, optionally broken off mid-way.

    With ``abort`` the app returns without finishing the body, so uvicorn closes the
    transport and the client sees the chunked body end prematurely. A client disconnect
    cancels the sender at once (the fake never keeps streaming to nobody).
    """

    def __init__(
        self,
        frames: Iterable[Frame],
        *,
        media_type: str = "text/event-stream",
        headers: dict[str, str] | None = None,
        abort: bool = False,
        on_disconnect: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(headers=headers, media_type=media_type)
        del self.headers["content-length"]
        self.frames = list(frames)
        self.abort = abort
        self.on_disconnect = on_disconnect

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        sender = asyncio.ensure_future(self._send_frames(send))
        watcher = asyncio.ensure_future(_wait_disconnect(receive))
        try:
            await asyncio.wait({sender, watcher}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            finished = sender.done()
            for task in (sender, watcher):
                task.cancel()
            await asyncio.gather(sender, watcher, return_exceptions=True)
        if not finished:  # the client went away mid-stream
            if self.on_disconnect is not None:
                self.on_disconnect()
            return
        error = sender.exception()
        if error is not None:
            raise error

    async def _send_frames(self, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        for frame in self.frames:
            if frame.delay:
                await asyncio.sleep(frame.delay)
            await send({"type": "http.response.body", "body": frame.data, "more_body": True})
        if not self.abort:
            await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _wait_disconnect(receive: Receive) -> None:
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            return


def sse(data: Any, event: str | None = None) -> bytes:
    """One server-sent event: optional ``event:`` line, one ``data:`` line, blank line."""
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    head = f"event: {event}\n" if event is not None else ""
    return f"{head}data: {payload}\n\n".encode()


def new_id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:24]}"


class FakeUpstream:
    """Scenario queue, request log and the running server of one fake provider."""

    api_prefix = ""
    chat_path = ""

    def __init__(self) -> None:
        self._server: LiveServer | None = None
        self._generation = 0
        self.reset()

    def reset(self) -> None:
        """Forget requests, scripts and disconnects, so a running fake can serve a new test.

        Late news from before the reset (a client hanging up on an old reply) is ignored.
        """
        self.requests: list[RecordedRequest] = []
        self.default = Scenario()
        self.disconnects = 0
        self._disconnected = asyncio.Event()
        self._scenarios: deque[Scenario] = deque()
        self._generation += 1

    def script(self, *scenarios: Scenario) -> Self:
        """Queue scenarios for the next chat requests, in order."""
        self._scenarios.extend(scenarios)
        return self

    def next_scenario(self) -> Scenario:
        return self._scenarios.popleft() if self._scenarios else self.default

    @property
    def pending(self) -> int:
        """Scenarios scripted but not used yet."""
        return len(self._scenarios)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``, the server's origin."""
        if self._server is None:
            raise RuntimeError("the fake is not running")
        return self._server.base_url

    @property
    def base_url(self) -> str:
        """What to hand the provider's SDK as its base URL."""
        return self.url + self.api_prefix

    async def wait_for_disconnect(self) -> None:
        """Wait until a client has hung up before its reply was complete."""
        await self._disconnected.wait()

    def _client_left(self, generation: int) -> None:
        if generation == self._generation:
            self.disconnects += 1
            self._disconnected.set()

    def event_stream(
        self, frames: Iterable[Frame], headers: dict[str, str], *, abort: bool = False
    ) -> ScriptedStream:
        """An event-stream response that counts client disconnects."""
        on_disconnect = functools.partial(self._client_left, self._generation)
        return ScriptedStream(frames, headers=headers, abort=abort, on_disconnect=on_disconnect)

    async def delay(self, scenario: Scenario, request: Request) -> None:
        """Hold back the response's first byte, but stop waiting if the client hangs up."""
        generation = self._generation
        if scenario.first_byte_delay:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(scenario.first_byte_delay):
                    await _wait_disconnect(request.receive)
                    self._client_left(generation)

    def requests_to(self, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == path]

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        """Requests to the chat endpoint, oldest first."""
        return self.requests_to(self.chat_path)

    async def record(self, request: Request) -> RecordedRequest:
        recorded = RecordedRequest(
            method=request.method,
            path=request.url.path,
            headers={k.lower(): v for k, v in request.headers.items()},
            body=await request.body(),
        )
        self.requests.append(recorded)
        return recorded

    @asynccontextmanager
    async def running(self, app: Any) -> AsyncIterator[Self]:
        async with serve_asgi(app) as server:
            self._server = server
            try:
                yield self
            finally:
                self._server = None
