"""Provider credentials as staff settings make them, cached per process.

Every generation asks for them; reading ``system_config`` each time would be a query per
chat. They are re-read at most every ``CONFIG_CACHE_SECONDS``, and at once after a change
anywhere (``invalidate``, called on a broker notice). One read serves every caller that
found them stale at the same moment, and a change announced while a read is under way
makes the next caller read again rather than keep what that read found.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from llm_gateway.providers.registry import Credentials
from llm_gateway.services.staff.runtime_settings import apply_overrides


class CredentialCache:
    """The environment's credentials with the staff's overrides (``load``) applied."""

    def __init__(
        self,
        base: Credentials,
        load: Callable[[], Awaitable[dict[str, str]]],
        ttl_seconds: float,
    ) -> None:
        self._base = base
        self._load = load
        self._ttl = ttl_seconds
        self._at = float("-inf")  # when the values in use were read
        self._value = base
        self._changes = 0  # changes announced so far (``invalidate``)
        self._reading = asyncio.Lock()

    async def __call__(self) -> Credentials:
        if time.monotonic() - self._at < self._ttl:
            return self._value
        async with self._reading:  # one read for everyone who found the values stale
            if time.monotonic() - self._at < self._ttl:
                return self._value
            changes, started = self._changes, time.monotonic()
            self._value = apply_overrides(self._base, await self._load())
            if changes == self._changes:  # else it may predate the change: read again next
                self._at = started
            return self._value

    def invalidate(self) -> None:
        self._changes += 1
        self._at = float("-inf")
