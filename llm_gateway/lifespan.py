"""The pieces the application's lifespan is built from: its Redis client, its instance id,
shutdown steps that cannot hang, and the drain on SIGTERM.

``app.create_app`` wires them together; they are here so that the wiring reads as one
sequence (build, serve, tear down) without the details of each part.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from llm_gateway.services.plumbing.health import Intake
from llm_gateway.settings import Settings

logger = logging.getLogger("llm_gateway")

REDIS_MAX_CONNECTIONS = 200
REDIS_CONNECT_SECONDS = 2.0
REDIS_SOCKET_SECONDS = 5.0
SHUTDOWN_STEP_SECONDS = 3.0


def redis_client(settings: Settings) -> Redis | None:
    """The process's one Redis client, when ``REDIS_URL`` is set.

    A blocking pool: under a burst, callers wait for a connection instead of failing with
    "Too many connections" (which would fail generations mid-stream).
    """
    if not settings.redis_url:
        return None
    return Redis.from_pool(  # the client owns the pool and closes it
        BlockingConnectionPool.from_url(
            settings.redis_url,
            max_connections=REDIS_MAX_CONNECTIONS,
            timeout=10,
            # A Redis that is down must fail fast: the broker and the rate limiter
            # degrade on their own, and backoffs would stall requests and shutdown.
            # One immediate retry replaces a pooled connection Redis dropped.
            socket_connect_timeout=REDIS_CONNECT_SECONDS,
            socket_timeout=REDIS_SOCKET_SECONDS,
            retry=Retry(NoBackoff(), 1),
        )
    )


def default_instance_id() -> str:
    """Unique per process start: a restarted process is a new owner, never mistaken for
    the one that died (whose holds any sweeper recovers once their lease lapses)."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(3)}"


async def settled(task: asyncio.Task[None]) -> None:
    """Wait for a cancelled task to end, its cancellation being the expected end."""
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def bounded(what: str, step: Awaitable[None], seconds: float | None = None) -> None:
    """Run one shutdown step, giving up on it (logged) after ``seconds``."""
    try:
        await asyncio.wait_for(step, seconds or SHUTDOWN_STEP_SECONDS)
    except TimeoutError:
        logger.error("shutdown: %s did not finish in time; going on", what)
    except Exception:
        logger.exception("shutdown: %s failed", what)


DRAIN_POLL_SECONDS = 0.1
DRAIN_SETTLE_SECONDS = 0.5
"""After the last answer ended, so its terminal event reaches its subscribers' sockets."""


class Drain:
    """SIGTERM under uvicorn: stop taking work, let running answers finish, then stop.

    ``install`` (from the lifespan, once uvicorn's own handler is in place) takes SIGTERM
    over. On it, ``intake`` closes at once (``/readyz`` answers 503, new sends are refused),
    running answers get ``grace_seconds`` to finish, and then uvicorn is told to exit: it
    closes the websockets (1012, after their answers ended), gives open HTTP responses its
    graceful timeout, and runs the lifespan's shutdown, where ``remaining`` is what is left
    of the grace for answers still running. A second SIGTERM stops at once. Exiting this
    way is a normal exit (status 0), not a death by signal.
    """

    def __init__(self, intake: Intake, grace_seconds: float, busy: Callable[[], int]) -> None:
        self._intake = intake
        self._grace = grace_seconds
        self._busy = busy
        self._started: float | None = None
        self._task: asyncio.Task[None] | None = None

    def install(self) -> bool:
        """Take SIGTERM over from uvicorn's server; False when not served that way."""
        previous = signal.getsignal(signal.SIGTERM)
        server = getattr(previous, "__self__", None)
        if server is None or not hasattr(server, "should_exit"):
            return False  # not uvicorn's handler (an ASGI test harness, a second app)
        loop = asyncio.get_running_loop()

        def on_sigterm(signum: int, frame: object) -> None:
            if self._started is not None:
                server.should_exit = True
                return
            loop.call_soon_threadsafe(self._start, server)

        signal.signal(signal.SIGTERM, on_sigterm)
        return True

    def _start(self, server: Any) -> None:
        logger.warning("SIGTERM: draining (%d answers running)", self._busy())
        self._started = time.monotonic()
        self._intake.open = False
        self._task = asyncio.create_task(self._wait_then_stop(server), name="drain")

    async def _wait_then_stop(self, server: Any) -> None:
        deadline = time.monotonic() + self._grace
        # A poll, a few times a second during a drain only: "busy" spans the answers and
        # the API requests, which signal no common event.
        while self._busy() and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(DRAIN_POLL_SECONDS)
        await asyncio.sleep(DRAIN_SETTLE_SECONDS)
        self._intake.stopping.set()  # HTTP subscription streams end with a completion
        server.should_exit = True

    def remaining(self) -> float:
        """What is left of the grace period for answers still running at shutdown."""
        if self._started is None:
            return self._grace
        return max(0.0, self._grace - (time.monotonic() - self._started))
