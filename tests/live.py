"""A real server on loopback, for what ASGI transports cannot do (websockets, streaming).

``live_server(settings)`` runs the whole application under uvicorn, lifespan included, as a
task in the test's own event loop, on a socket bound to a free port before the server
starts (so there is no window in which another process could take the port).
``graphql_socket(server, payload)`` opens a ``graphql-transport-ws`` connection to it::

    async with live_server(settings) as server:
        async with graphql_socket(server, {"Authorization": f"Bearer {token(7)}"}) as socket:
            data = await socket.execute("{ me { userId } }")
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from llm_gateway.app import create_app
from llm_gateway.settings import Settings
from tests.support import TEST_SECRET

GRAPHQL_TRANSPORT_WS = Subprotocol("graphql-transport-ws")
STARTUP_TIMEOUT_SECONDS = 15.0
SHUTDOWN_TIMEOUT_SECONDS = 15.0
RECEIVE_TIMEOUT_SECONDS = 10.0
_POLL_INTERVAL_SECONDS = 0.01
UVICORN_WS_MAX_SIZE = 16 * 1024 * 1024  # uvicorn's default


@dataclass(frozen=True, slots=True)
class LiveServer:
    """Where a running server listens."""

    host: str
    port: int
    app: Any = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def graphql_url(self) -> str:
        return f"{self.base_url}/graphql"

    @property
    def graphql_ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}/graphql"


@asynccontextmanager
async def live_server(settings: Settings) -> AsyncIterator[LiveServer]:
    """Serve ``create_app(settings)`` on 127.0.0.1 until the block ends, as ``serve`` would."""
    app = create_app(settings)
    async with serve_asgi(app, ws_max_size=settings.max_websocket_message_bytes) as server:
        yield server


@asynccontextmanager
async def serve_asgi(
    app: Any, host: str = "127.0.0.1", *, ws_max_size: int = UVICORN_WS_MAX_SIZE
) -> AsyncIterator[LiveServer]:
    """Serve any ASGI app (lifespan on) on a free loopback port until the block ends."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port: int = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        log_config=None,  # leave the test process's logging (and caplog) alone
        access_log=False,
        ws="websockets-sansio",
        ws_max_size=ws_max_size,
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)

    async def run() -> None:
        try:
            await server.serve(sockets=[sock])
        except SystemExit as exc:  # uvicorn exits the process when startup fails
            raise RuntimeError(f"the server failed to start (exit code {exc.code})") from None

    task = asyncio.create_task(run(), name=f"uvicorn:{port}")
    try:
        await _wait_started(server, task)
        yield LiveServer(host, port, app)
    finally:
        server.should_exit = True
        try:
            async with asyncio.timeout(SHUTDOWN_TIMEOUT_SECONDS):
                await task
        finally:
            sock.close()


async def _wait_started(server: uvicorn.Server, task: asyncio.Task[None]) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STARTUP_TIMEOUT_SECONDS
    while not server.started:
        if task.done():
            task.result()  # raises why it stopped
            raise RuntimeError("the server stopped before it started")
        if loop.time() > deadline:
            raise TimeoutError(f"the server did not start within {STARTUP_TIMEOUT_SECONDS}s")
        await asyncio.sleep(_POLL_INTERVAL_SECONDS)


class SocketClosed(AssertionError):
    """The server closed the socket where a message was expected."""

    def __init__(self, code: int | None, reason: str) -> None:
        super().__init__(f"socket closed by the server: {code} {reason}")
        self.code = code
        self.reason = reason


class GraphQLSocket:
    """A ``graphql-transport-ws`` client, written from the protocol, not from our server."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self._ids = itertools.count(1)
        # Messages of this client's other open operations that arrived while ``events``
        # read one operation (the protocol does not order operations among themselves),
        # in arrival order; ``receive`` and ``events`` hand them out first.
        self._held: list[dict[str, Any]] = []
        self._open: set[str] = set()

    async def send(self, message: dict[str, Any]) -> None:
        await self.connection.send(json.dumps(message))

    async def receive(self, within: float = RECEIVE_TIMEOUT_SECONDS) -> dict[str, Any]:
        """The next protocol message; answers server pings; raises SocketClosed."""
        if self._held:
            return self._held.pop(0)
        return await self._receive(within)

    async def _receive(self, within: float = RECEIVE_TIMEOUT_SECONDS) -> dict[str, Any]:
        while True:
            try:
                async with asyncio.timeout(within):
                    raw = await self.connection.recv()
            except ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd is not None else None
                reason = exc.rcvd.reason if exc.rcvd is not None else ""
                raise SocketClosed(code, reason) from None
            message: dict[str, Any] = json.loads(raw)
            if message.get("type") == "ping":
                await self.send({"type": "pong"})
                continue
            return message

    async def init(self, payload: dict[str, Any] | None) -> dict[str, Any]:
        """Send ``connection_init`` and return the ``connection_ack``."""
        message: dict[str, Any] = {"type": "connection_init"}
        if payload is not None:
            message["payload"] = payload
        await self.send(message)
        ack = await self.receive()
        assert ack["type"] == "connection_ack", ack
        return ack

    async def subscribe(self, query: str, variables: dict[str, Any] | None = None) -> str:
        """Start an operation and return its id."""
        operation_id = str(next(self._ids))
        await self.send(
            {
                "id": operation_id,
                "type": "subscribe",
                "payload": {"query": query, "variables": variables or {}},
            }
        )
        self._open.add(operation_id)
        return operation_id

    async def events(self, operation_id: str) -> AsyncIterator[dict[str, Any]]:
        """Payloads of ``next`` messages for one operation, until it completes.

        An ``error`` message (a request the server rejected) ends the stream by raising.
        """
        while True:
            mine = next((m for m in self._held if m.get("id") == operation_id), None)
            if mine is not None:
                self._held.remove(mine)
            message = mine or await self._receive()
            other = message.get("id")
            if other != operation_id:
                if other in self._open:  # another open operation's: kept for its reader
                    self._held.append(message)
                    continue
                raise AssertionError(f"unexpected message for another operation: {message}")
            if message["type"] == "next":
                payload: dict[str, Any] = message["payload"]
                yield payload
            elif message["type"] == "complete":
                self._open.discard(operation_id)
                return
            elif message["type"] == "error":
                self._open.discard(operation_id)
                raise AssertionError(f"operation {operation_id} failed: {message['payload']}")
            else:
                raise AssertionError(f"unexpected message: {message}")

    async def execute(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run a query or mutation over the socket: exactly one result, then ``complete``."""
        operation_id = await self.subscribe(query, variables)
        results = [payload async for payload in self.events(operation_id)]
        assert len(results) == 1, results
        return results[0]

    async def expect_close(self, within: float = RECEIVE_TIMEOUT_SECONDS) -> int | None:
        """Wait for the server to close the socket and return its close code."""
        try:
            message = await self.receive(within)
        except SocketClosed as closed:
            return closed.code
        raise AssertionError(f"expected the socket to close, got {message}")


@asynccontextmanager
async def graphql_socket(
    server: LiveServer, payload: dict[str, Any] | None = None, *, init: bool = True
) -> AsyncIterator[GraphQLSocket]:
    """Connect to ``/graphql``; with ``init`` (the default) also wait for the ack."""
    async with connect(
        server.graphql_ws_url, subprotocols=[GRAPHQL_TRANSPORT_WS], open_timeout=10
    ) as connection:
        client = GraphQLSocket(connection)
        if init:
            await client.init(payload)
        yield client


GATEWAY = Path(sys.executable).with_name("llm-gateway")
PROCESS_STARTUP_SECONDS = 30.0
_SCRUBBED_ENV = (
    "SQL_",
    "DJANGO_",
    "JWT_",
    "OPENAI_",
    "ANTHROPIC_",
    "GIGACHAT_",
    "REDIS_",
    "DATABASE_",
)


def scrubbed_environment() -> dict[str, str]:
    """This process's environment without the gateway's own variables, plus the test
    secret and DEBUG off: what a gateway child process starts from."""
    values = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED_ENV)}
    values.update(DJANGO_SECRET_KEY=TEST_SECRET, DEBUG="false")
    return values


@asynccontextmanager
async def gateway_process(workdir: Path, **env: str) -> AsyncIterator[LiveServer]:
    """``llm-gateway serve`` in its own process (as in production) until the block ends.

    ``env`` is added to a copy of this process's environment stripped of the gateway's
    own variables; the test secret and DEBUG off are set unless given. On exit the server
    gets SIGTERM and must shut down cleanly, with no traceback in its output.
    """
    await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    values = scrubbed_environment()
    values.update(LOG_LEVEL="WARNING")
    values.update(env)
    log = workdir / "server.log"
    with log.open("wb") as sink:
        process = await asyncio.create_subprocess_exec(
            str(GATEWAY),
            "serve",
            "--port",
            str(port),
            cwd=workdir,
            env=values,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    live = LiveServer("127.0.0.1", port)
    try:
        await _wait_ready(live, process, log)
        yield live
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(SHUTDOWN_TIMEOUT_SECONDS):
                code = await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()
            raise
        output = await asyncio.to_thread(log.read_text)
        # uvicorn shuts down gracefully, then re-raises SIGTERM: -15 is a clean exit.
        assert code in (0, -signal.SIGTERM), output
        assert "Traceback" not in output, output


async def _wait_ready(live: LiveServer, process: asyncio.subprocess.Process, log: Path) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + PROCESS_STARTUP_SECONDS
    async with httpx.AsyncClient(base_url=live.base_url) as client:
        while loop.time() < deadline:
            if process.returncode is not None:
                output = await asyncio.to_thread(log.read_text)
                raise AssertionError(f"the server exited: {output}")
            try:
                if (await client.get("/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)  # polling a starting process: nothing to wait on
    raise AssertionError("the server did not become ready in time")
