"""Request size limits, enforced before the application reads anything.

HTTP (``MAX_REQUEST_BYTES``, every route: GraphQL, REST, the admin's forms): a declared
``Content-Length`` over the limit is answered 413 before a byte of the body is read; a
body without one (chunked) is counted as it arrives and refused the moment it passes the
limit, so the application never holds more than the limit. The 413 closes the connection
(the rest of the body is never read) and carries a GraphQL-shaped error coded
PAYLOAD_TOO_LARGE; under ``/v1``, OpenAI's envelope coded ``request_too_large``. The
application sees the refused body end as a client disconnect.

A dialog import travels in one GraphQL request, so this limit bounds it too: the
importer's own limit (``services.transfer.MAX_IMPORT_BYTES``) only matters when
MAX_REQUEST_BYTES is set above it.

Websocket (``MAX_WEBSOCKET_MESSAGE_BYTES``): the ASGI server should refuse a message over
the limit first (uvicorn's ``ws_max_size``, passed by ``llm-gateway serve``); this check
is the same limit under a server that does not, and closes with 1009 (message too big).
"""

from __future__ import annotations

import json

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
MESSAGE_TOO_BIG = 1009  # RFC 6455


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers") or ():
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server's framing decides; the body is counted anyway
    return None


def _too_large_body(limit: int, path: str) -> bytes:
    """The 413's body: OpenAI's error envelope under ``/v1`` (its SDKs read no other), a
    GraphQL-shaped error everywhere else."""
    message = f"Request body too large: at most {limit} bytes are accepted."
    if path == "/v1" or path.startswith("/v1/"):
        envelope = {
            "message": message,
            "type": "invalid_request_error",
            "param": None,
            "code": "request_too_large",
        }
        return json.dumps({"error": envelope}).encode()
    error = {"message": message, "extensions": {"code": PAYLOAD_TOO_LARGE, "maximum": limit}}
    return json.dumps({"errors": [error]}).encode()


async def _refuse(send: Send, limit: int, path: str) -> None:
    body = _too_large_body(limit, path)
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _message_size_over(message: Message, limit: int) -> bool:
    text = message.get("text")
    if text is not None:
        # A character is one to four bytes in UTF-8: encode only when that decides.
        if len(text) > limit:
            return True
        return len(text) * 4 > limit and len(text.encode()) > limit
    data = message.get("bytes")
    return data is not None and len(data) > limit


class BodyLimitMiddleware:
    """Refuses HTTP bodies and websocket messages over their limits (module docstring)."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, max_message_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_message_bytes = max_message_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self.max_body_bytes
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            await _refuse(send, limit, scope["path"])
            return
        received = 0
        started = refused = False

        async def limited_receive() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    refused = True
                    if not started:
                        await _refuse(send, limit, scope["path"])
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused and not started:
                return  # the client has its 413; the app's answer to the "disconnect" is moot
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except ClientDisconnect:
            if not refused:
                raise

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self.max_message_bytes
        closed = False
        gone: Message = {"type": "websocket.disconnect", "code": MESSAGE_TOO_BIG}

        async def limited_receive() -> Message:
            nonlocal closed
            if closed:
                return gone
            message = await receive()
            if message["type"] == "websocket.receive" and _message_size_over(message, limit):
                closed = True
                await send(
                    {
                        "type": "websocket.close",
                        "code": MESSAGE_TOO_BIG,
                        "reason": "Message too big",
                    }
                )
                return gone
            return message

        async def guarded_send(message: Message) -> None:
            if not closed:  # operations still running may try to send on the closed socket
                await send(message)

        await self.app(scope, limited_receive, guarded_send)
