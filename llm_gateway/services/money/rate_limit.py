"""Per-user request limits on the expensive operations (sending, regenerating).

A fixed window of ``RATE_LIMIT_WINDOW`` seconds allows ``RATE_LIMIT_REQUESTS`` calls per
user (0 turns it off). With Redis the count is shared by every instance (one atomic
INCR + EXPIRE); without it each process counts for itself. If Redis cannot be reached
the limiter lets the call through and logs it: the balance, not the rate limit, is what
protects the money.
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
        self._local: dict[tuple[int, int], int] = {}

    def configure(self, limit: int, window_seconds: int) -> None:
        """Apply new limits (staff changed them at runtime)."""
        self._limit = limit
        self._window = window_seconds

    async def hit(self, user_id: int) -> None:
        """Count one call; raise RATE_LIMITED (with ``retryAfter`` seconds) over the limit."""
        if self._limit <= 0:
            return
        now = time.time()
        window = int(now // self._window)
        count = await self._count(user_id, window)
        if count is not None and count > self._limit:
            retry_after = math.ceil((window + 1) * self._window - now)
            raise RateLimited(
                f"Too many requests: at most {self._limit} per {self._window} s.",
                limit=self._limit,
                windowSeconds=self._window,
                retryAfter=retry_after,
            )

    async def _count(self, user_id: int, window: int) -> int | None:
        if self._redis is None:
            for key in [k for k in self._local if k[1] < window]:
                del self._local[key]
            key = (user_id, window)
            self._local[key] = self._local.get(key, 0) + 1
            return self._local[key]
        name = f"llmgw:rate:{user_id}:{window}"
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.incr(name)
                pipe.expire(name, self._window + 1)
                count, _ = await pipe.execute()
        except (RedisError, OSError):
            logger.warning("rate limiter could not reach Redis; letting the call through")
            return None
        return int(count)
