"""The pieces the application's lifespan is built from: its Redis client, its instance id,
and shutdown steps that cannot hang.

``app.create_app`` wires them together; they are here so that the wiring reads as one
sequence (build, serve, tear down) without the details of each part.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import Awaitable

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

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
