"""Publishing to Redis in pipelines: one round trip for everything queued meanwhile.

Every running answer publishes a delta per coalescing window, so a busy process has many
publishes in flight at once. Each used to take a pooled connection, a timeout and a round
trip of its own. Here a publish joins a queue; one flusher task sends what is queued as a
single pipeline, and whatever arrives while that pipeline is on the wire goes out in the
next one. Nothing waits for a window: a lone publish leaves at once, as before, and each
caller still learns whether its message went out. Messages leave in the order they were
queued, so an answer's last delta always precedes its end.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
from collections.abc import Callable
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

Queued = tuple[str, bytes, asyncio.Future[bool]]


def encode(event: Any) -> bytes:
    """An event's JSON: orjson's, or the standard library's for what orjson refuses (a
    lone surrogate a provider escaped into its text, an integer past 64 bits)."""
    try:
        return orjson.dumps(event)
    except TypeError:
        return json.dumps(event).encode()


def decode(data: bytes | str) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:  # the standard library's escapes, as ``encode`` wrote
        return json.loads(data)


class Outbox:
    """Pipelined publishes; ``on_error`` hears of a Redis failure (every message of that
    pipeline is then reported unsent)."""

    def __init__(
        self, redis: Redis, *, timeout: float, on_error: Callable[[BaseException], None]
    ) -> None:
        self._redis = redis
        self._timeout = timeout
        self._on_error = on_error
        self._queue: list[Queued] = []
        self._flusher: asyncio.Task[None] | None = None

    async def publish(self, channel: str, data: bytes) -> bool:
        """Queue one message; True once Redis took it, False when it could not be sent."""
        sent: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queue.append((channel, data, sent))
        if self._flusher is None or self._flusher.done():
            # A context of its own: it publishes for every request, naming none of them.
            self._flusher = asyncio.create_task(
                self._flush(), name="redis-outbox", context=contextvars.Context()
            )
        return await asyncio.shield(sent)

    async def _flush(self) -> None:
        batch: list[Queued] = []
        try:
            while self._queue:
                batch, self._queue = self._queue, []
                ok = await self._send(batch)
                for _, _, sent in batch:
                    if not sent.done():
                        sent.set_result(ok)
                batch = []
        finally:  # cancelled (at shutdown): nobody may wait forever
            for _, _, sent in [*batch, *self._queue]:
                if not sent.done():
                    sent.set_result(False)
            self._queue = []

    async def _send(self, batch: list[Queued]) -> bool:
        try:
            async with (
                asyncio.timeout(self._timeout),
                self._redis.pipeline(transaction=False) as pipeline,
            ):
                for channel, data, _ in batch:
                    pipeline.publish(channel, data)
                await pipeline.execute()
        except (RedisError, OSError, TimeoutError) as exc:
            self._on_error(exc)
            return False
        return True
