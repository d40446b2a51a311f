"""Parts the fault tests break on purpose: a Redis of their own, a gateway process to kill.

Never the shared servers: a test that needs Redis to die starts ``redis-server`` on a
free port and kills that one; a test that needs the gateway to crash runs
``llm-gateway serve`` as a child process and sends it SIGKILL.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from redis.asyncio import Redis
from redis.exceptions import RedisError

from tests.live import GATEWAY, LiveServer, scrubbed_environment

START_SECONDS = 30.0
_POLL_SECONDS = 0.05


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def until(condition: object, *, within: float = START_SECONDS, what: str = "") -> None:
    """Poll an async predicate until it holds (for state in another process)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        if await condition():  # type: ignore[operator]
            return
        await asyncio.sleep(_POLL_SECONDS)
    raise AssertionError(f"not within {within}s: {what}")


@dataclass
class RedisServer:
    """A ``redis-server`` of the test's own, on a free port: killed and restarted at will."""

    workdir: Path
    port: int = field(default_factory=free_port)
    process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary is not None, "redis-server is not installed"
        self.process = await asyncio.create_subprocess_exec(
            binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.workdir),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        await until(self._answers, what=f"redis-server on port {self.port} answers")

    async def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        self.process = None

    async def _answers(self) -> bool:
        client = Redis.from_url(self.url)
        try:
            return bool(await client.ping())
        except (RedisError, OSError):
            return False
        finally:
            await client.aclose()


@asynccontextmanager
async def redis_server(workdir: Path) -> AsyncIterator[RedisServer]:
    await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
    server = RedisServer(workdir)
    await server.start()
    try:
        yield server
    finally:
        await server.kill()


@dataclass
class GatewayProcess:
    """``llm-gateway serve`` as a child process, as in production."""

    workdir: Path
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    process: asyncio.subprocess.Process | None = None
    starts: int = 0

    @property
    def server(self) -> LiveServer:
        return LiveServer("127.0.0.1", self.port)

    @property
    def log(self) -> Path:
        return self.workdir / f"server-{self.starts}.log"

    async def start(self) -> LiveServer:
        await asyncio.to_thread(self.workdir.mkdir, parents=True, exist_ok=True)
        self.starts += 1
        with self.log.open("wb") as sink:
            self.process = await asyncio.create_subprocess_exec(
                str(GATEWAY),
                "serve",
                "--port",
                str(self.port),
                cwd=self.workdir,
                env={**scrubbed_environment(), **self.env},
                stdout=sink,
                stderr=subprocess.STDOUT,
                # Its own process group: a kill reaches the workers of `--workers` too.
                start_new_session=True,
            )
        await until(self._ready, what=f"the gateway became ready ({self.output()})")
        return self.server

    async def _ready(self) -> bool:
        assert self.process is not None
        if self.process.returncode is not None:
            raise AssertionError(f"the gateway exited: {self.output()}")
        try:
            async with httpx.AsyncClient(base_url=self.server.base_url) as client:
                return (await client.get("/healthz")).status_code == 200
        except httpx.TransportError:
            return False

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    async def kill(self) -> None:
        """SIGKILL to the whole process group: no shutdown hook runs, as in a crash."""
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        await self.process.wait()

    async def terminate(self, within: float) -> int:
        """SIGTERM, then the exit code; fails if the process is still alive after ``within``."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(within):
                return await self.process.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            await self.process.wait()
            raise AssertionError(
                f"still running {within}s after SIGTERM: {self.output()}"
            ) from None

    async def stop(self) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):  # workers may outlive their parent
            os.killpg(self.process.pid, signal.SIGKILL)
        await self.process.wait()


@asynccontextmanager
async def gateway(workdir: Path, **env: str) -> AsyncIterator[GatewayProcess]:
    handle = GatewayProcess(workdir, {"LOG_LEVEL": "WARNING", **env})
    try:
        yield handle
    finally:
        await handle.stop()
