"""The processes a benchmark runs: the gateway, the fake upstream (their /proc: ``procfs``).

Everything listens on 127.0.0.1. The gateway is started exactly as in production
(``llm-gateway serve``: uvicorn picks uvloop and httptools, ``DEBUG`` off; with
``--workers N``, a supervisor and N worker processes on one socket); the fake upstream
runs in a process of its own, so neither shares an event loop with the load.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx

from benchmarks import procfs
from tests.fakes import DEFAULT_OPENAI_KEY

GATEWAY = Path(sys.executable).with_name("llm-gateway")
REPOSITORY = Path(__file__).resolve().parent.parent
STARTUP_SECONDS = 60.0
STOP_SECONDS = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def stop(process: asyncio.subprocess.Process) -> int:
    """SIGTERM, a graceful wait, then SIGKILL; returns the exit code."""
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(STOP_SECONDS):
                return await process.wait()
        except TimeoutError:
            process.kill()
    return await process.wait()


@dataclass(frozen=True, slots=True)
class FakeUpstream:
    process: asyncio.subprocess.Process
    port: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


async def start_fake(first_token_ms: float, tokens: int, token_interval_ms: float) -> FakeUpstream:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "benchmarks.fake_upstream",
        "--first-token-ms",
        str(first_token_ms),
        "--tokens",
        str(tokens),
        "--token-interval-ms",
        str(token_interval_ms),
        stdout=subprocess.PIPE,
    )
    assert process.stdout is not None
    async with asyncio.timeout(STARTUP_SECONDS):
        line = await process.stdout.readline()
    if not line:
        await process.wait()
        raise RuntimeError(f"the fake upstream exited ({process.returncode})")
    return FakeUpstream(process, int(json.loads(line)["port"]))


@dataclass(frozen=True, slots=True)
class Gateway:
    process: asyncio.subprocess.Process
    port: int
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/graphql"


def gateway_env(database_url: str, redis_url: str, secret: str, upstream: str) -> dict[str, str]:
    """The process environment less anything that configures the gateway, plus ours."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(
            (
                "SQL_",
                "DJANGO_",
                "JWT_",
                "OPENAI_",
                "ANTHROPIC_",
                "GIGACHAT_",
                "REDIS_",
                "DATABASE_",
                "DB_",
                "DEBUG",
                "LOG_LEVEL",
                "GENERATION_",
                "PROVIDER_",
                "RATE_LIMIT_",
                "INITIAL_TOKEN_",
                "WEB_CONCURRENCY",  # the workers are start_gateway's to choose
            )
        )
    }
    env.update(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        DJANGO_SECRET_KEY=secret,
        OPENAI_API_KEY=DEFAULT_OPENAI_KEY,
        OPENAI_BASE_URL=upstream,
        DEBUG="false",
        LOG_LEVEL="WARNING",
        INITIAL_TOKEN_BALANCE=str(10**9),
    )
    return env


async def start_gateway(
    env: dict[str, str], workdir: Path, name: str, variants: str = "", workers: int = 1
) -> Gateway:
    """``llm-gateway serve`` on a free port; returns once it serves (``_wait_ready``).

    With ``variants`` the same command runs through ``benchmarks.gateway_variants``,
    which patches those candidate changes in first (in the supervisor only: uvicorn's
    spawned workers import ``llm_gateway`` afresh). ``workers`` > 1 adds ``--workers N``.
    """
    port = free_port()
    log = workdir / f"{name}.log"
    command = [str(GATEWAY)]
    if variants:
        command = [sys.executable, "-m", "benchmarks.gateway_variants"]
        env = {**env, "BENCH_VARIANTS": variants, "PYTHONPATH": str(REPOSITORY)}
    more = ["--workers", str(workers)] if workers > 1 else []
    with log.open("wb") as sink:
        process = await asyncio.create_subprocess_exec(
            *command,
            "serve",
            "--port",
            str(port),
            *more,
            cwd=workdir,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    gateway = Gateway(process, port, log)
    try:
        async with asyncio.timeout(STARTUP_SECONDS):
            await _wait_ready(gateway, workers)
    except TimeoutError:
        await stop(process)
        raise RuntimeError(f"the gateway did not become ready: {log.read_text()}") from None
    return gateway


QUIET_CPU_SECONDS = 0.05  # per worker in QUIET_WINDOW: done importing, waiting for work
QUIET_WINDOW = 0.25


async def _wait_ready(gateway: Gateway, workers: int) -> None:
    """Until ``/readyz`` answers 200 and, with several workers, all of them are up.

    Workers share the supervisor's socket and one that is still starting accepts no
    connection, so a 200 says only that one worker is ready. Hence: N spawned children of
    the supervisor, each quiet (its start-up's imports done), ``/readyz`` 200, then two
    more ``/readyz`` per worker, each on a new connection (any worker may accept it).
    """
    async with httpx.AsyncClient(base_url=gateway.base_url) as client:
        while not (await _ready(client) and await _workers_up(gateway.pid, workers)):
            if gateway.process.returncode is not None:
                raise RuntimeError(f"the gateway exited: {gateway.log.read_text()}")
            await asyncio.sleep(0.1)
    more = 2 * workers if workers > 1 else 0
    while more:
        async with httpx.AsyncClient(base_url=gateway.base_url) as fresh:  # a new connection
            ready = await _ready(fresh)
        if ready:
            more -= 1
        else:
            await asyncio.sleep(0.1)


async def _ready(client: httpx.AsyncClient) -> bool:
    try:
        return (await client.get("/readyz")).status_code == 200
    except httpx.TransportError:
        return False


async def _workers_up(supervisor: int, workers: int) -> bool:
    """``workers`` spawned children of ``supervisor`` exist and none is busy starting."""
    if workers <= 1:
        return True
    children = procfs.spawned_children(supervisor)
    if len(children) < workers:
        return False
    before = procfs.cpu_by_pid(children)
    await asyncio.sleep(QUIET_WINDOW)
    after = procfs.cpu_by_pid(children)
    return all(after.get(pid, 0.0) - before[pid] < QUIET_CPU_SECONDS for pid in before)
