"""Per-user request limits on the expensive operations (sending, regenerating).

A user may make ``RATE_LIMIT_REQUESTS`` calls in a window of ``RATE_LIMIT_WINDOW`` seconds
that opens with their first call and closes that many seconds later (0 turns it off); the
next call after it opens a new one. A window anchored to the user, not to the clock, never
resets between two calls a moment apart. With Redis the count is shared by every instance
(one atomic SET NX EX + INCR + PTTL); without it each process counts for itself. If Redis
cannot be reached the limiter lets the call through and logs it: the balance, not the rate
limit, is what protects the money.
"""

from __future__ import annotations

import logging
import math
import time

from redis.asyncio import Redis
from redis.exceptions import RedisError

from llm_gateway.errors import RateLimited

logger = logging.getLogger("llm_gateway.rate_limit")


class RateLimiter:
    def __init__(self, limit: int, window_seconds: int, redis: Redis | None = None) -> None:
        self._limit = limit
        self._window = window_seconds
        self._redis = redis
        self._local: dict[int, tuple[float, int]] = {}  # user -> (window's end, calls in it)
        self._next_sweep = 0.0

    def configure(self, limit: int, window_seconds: int) -> None:
        """Apply new limits (staff changed them at runtime); open windows keep their end."""
        self._limit = limit
        self._window = window_seconds

    async def hit(self, user_id: int) -> None:
        """Count one call; raise RATE_LIMITED (with ``retryAfter`` seconds) over the limit."""
        if self._limit <= 0:
            return
        counted = await self._count(user_id)
        if counted is None:
            return
        count, seconds_left = counted
        if count > self._limit:
            raise RateLimited(
                f"Too many requests: at most {self._limit} per {self._window} s.",
                limit=self._limit,
                windowSeconds=self._window,
                retryAfter=max(1, math.ceil(seconds_left)),
            )

    async def _count(self, user_id: int) -> tuple[int, float] | None:
        """The calls in the user's window, this one included, and the seconds it has left."""
        if self._redis is None:
            return self._count_here(user_id, time.monotonic())
        name = f"llmgw:rate:{user_id}"
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.set(name, 0, ex=self._window, nx=True)
                pipe.incr(name)
                pipe.pttl(name)
                _, count, ttl_ms = await pipe.execute()
        except (RedisError, OSError):
            logger.warning("rate limiter could not reach Redis; letting the call through")
            return None
        return int(count), max(int(ttl_ms), 0) / 1000

    def _count_here(self, user_id: int, now: float) -> tuple[int, float]:
        if now >= self._next_sweep:
            self._local = {user: seen for user, seen in self._local.items() if seen[0] > now}
            self._next_sweep = now + self._window
        ends, count = self._local.get(user_id, (0.0, 0))
        if ends <= now:
            ends, count = now + self._window, 0
        self._local[user_id] = (ends, count + 1)
        return count + 1, ends - now
