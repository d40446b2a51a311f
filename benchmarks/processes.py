"""The processes a benchmark runs and watches: the gateway, the fake upstream, /proc readings.

Everything listens on 127.0.0.1. The gateway is started exactly as in production
(``llm-gateway serve``: uvicorn picks uvloop and httptools, ``DEBUG`` off); the fake
upstream runs in a process of its own, so neither shares an event loop with the load.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.fakes import DEFAULT_OPENAI_KEY

GATEWAY = Path(sys.executable).with_name("llm-gateway")
REPOSITORY = Path(__file__).resolve().parent.parent
STARTUP_SECONDS = 60.0
STOP_SECONDS = 30.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


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
    env: dict[str, str], workdir: Path, name: str, variants: str = ""
) -> Gateway:
    """``llm-gateway serve`` on a free port; returns once ``/readyz`` answers 200.

    With ``variants`` the same command runs through ``benchmarks.gateway_variants``,
    which patches those candidate changes in first.
    """
    port = free_port()
    log = workdir / f"{name}.log"
    command = [str(GATEWAY)]
    if variants:
        command = [sys.executable, "-m", "benchmarks.gateway_variants"]
        env = {**env, "BENCH_VARIANTS": variants, "PYTHONPATH": str(REPOSITORY)}
    with log.open("wb") as sink:
        process = await asyncio.create_subprocess_exec(
            *command,
            "serve",
            "--port",
            str(port),
            cwd=workdir,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    gateway = Gateway(process, port, log)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STARTUP_SECONDS
    async with httpx.AsyncClient(base_url=gateway.base_url) as client:
        while loop.time() < deadline:
            if process.returncode is not None:
                raise RuntimeError(f"the gateway exited: {log.read_text()}")
            try:
                if (await client.get("/readyz")).status_code == 200:
                    return gateway
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    await stop(process)
    raise RuntimeError(f"the gateway did not become ready: {log.read_text()}")


# -- /proc ---------------------------------------------------------------------------------


def rss_kib(pid: int) -> int:
    """Resident memory (VmRSS) of one process, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def _stat(pid: int | str) -> tuple[str, float]:
    """(command name, user + system CPU seconds) of one process."""
    text = Path(f"/proc/{pid}/stat").read_text()
    name = text[text.index("(") + 1 : text.rindex(")")]
    fields = text[text.rindex(")") + 2 :].split()
    return name, (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def cpu_seconds(pid: int) -> float:
    return _stat(pid)[1]


def cpu_by_pid(pids: Iterable[int]) -> dict[int, float]:
    """CPU seconds of each process still alive."""
    seconds = {}
    for pid in pids:
        try:
            seconds[pid] = cpu_seconds(pid)
        except (OSError, ValueError):
            continue
    return seconds


def _cpu_by_name(names: tuple[str, ...]) -> float:
    total = 0.0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            name, seconds = _stat(entry.name)
        except (OSError, ValueError):
            continue  # gone meanwhile
        if name.startswith(names):
            total += seconds
    return total


def machine_busy_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    total = sum(fields[:8])
    idle = fields[3] + fields[4]
    return (total - idle) / CLOCK_TICKS, total / CLOCK_TICKS


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


@dataclass(frozen=True, slots=True)
class CpuSample:
    gateway: float
    upstream: float
    load: float
    redis: float
    machine_busy: float


def sample_cpu(gateway_pid: int, upstream_pid: int) -> CpuSample:
    """CPU seconds used so far by each party (Redis: the whole server, shared with others)."""
    busy, _ = machine_busy_seconds()
    return CpuSample(
        gateway=cpu_seconds(gateway_pid),
        upstream=cpu_seconds(upstream_pid),
        load=cpu_seconds(os.getpid()),
        redis=_cpu_by_name(("redis-server",)),
        machine_busy=busy,
    )


def cores_used(before: CpuSample, after: CpuSample, seconds: float) -> dict[str, float]:
    """Average cores each party kept busy between two samples."""
    return {
        f.name: round((getattr(after, f.name) - getattr(before, f.name)) / seconds, 2)
        for f in dataclasses.fields(CpuSample)
    }
