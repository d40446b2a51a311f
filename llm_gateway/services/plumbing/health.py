"""Readiness: can this instance reach what it depends on?"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from redis.asyncio import Redis

from llm_gateway.db.engine import Database
from llm_gateway.errors import ServiceUnavailable

CHECK_TIMEOUT_SECONDS = 2.0


DRAINING_MESSAGE = "This server is shutting down; send again in a moment."


@dataclass(slots=True)
class Intake:
    """Whether this process still takes new work: false once it drains (SIGTERM).

    ``stopping`` is set when the drain is over and the server is about to stop: HTTP
    subscription streams then end with their completion.
    """

    open: bool = True
    stopping: asyncio.Event = field(default_factory=asyncio.Event)

    def ensure_open(self) -> None:
        """Refuse new sends while draining, before anything is held."""
        if not self.open:
            raise ServiceUnavailable(DRAINING_MESSAGE, reason="draining")


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    latency_ms: float
    error: str | None = None


async def _timed(name: str, probe: asyncio.Future[object] | object) -> Check:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(probe, CHECK_TIMEOUT_SECONDS)  # type: ignore[arg-type]
    except Exception as exc:  # any failure means "not ready"; the reason is reported
        return Check(name, False, _ms(started), f"{type(exc).__name__}: {exc}"[:200])
    return Check(name, True, _ms(started))


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


async def readiness(database: Database, redis: Redis | None) -> list[Check]:
    checks = [await _timed("database", database.ping())]
    if redis is not None:
        checks.append(await _timed("redis", redis.ping()))
    return checks
