"""The broker: publish JSON events on named channels, subscribe to them as async iterators.

``InProcessBroker`` serves one process (the embedded default). ``RedisBroker`` serves many
instances through Redis pub/sub, multiplexing every local subscriber over one Redis
connection, so an idle subscription costs a queue, not a socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Protocol

from redis.asyncio import Redis
from redis.asyncio.client import PubSub

logger = logging.getLogger("llm_gateway.broker")

Event = dict[str, Any]
QUEUE_LIMIT = 10_000


class Broker(Protocol):
    async def publish(self, channel: str, event: Event) -> None: ...

    def subscribe(
        self, channel: str
    ) -> contextlib.AbstractAsyncContextManager[AsyncIterator[Event]]: ...

    async def close(self) -> None: ...


class _Fanout:
    """Local subscribers per channel; each gets its own bounded queue."""

    def __init__(self) -> None:
        self.queues: defaultdict[str, set[asyncio.Queue[Event]]] = defaultdict(set)

    def add(self, channel: str) -> asyncio.Queue[Event]:
        queue: asyncio.Queue[Event] = asyncio.Queue(QUEUE_LIMIT)
        self.queues[channel].add(queue)
        return queue

    def remove(self, channel: str, queue: asyncio.Queue[Event]) -> bool:
        """Drop a subscriber; True when it was the channel's last."""
        subscribers = self.queues.get(channel)
        if subscribers is None:
            return False
        subscribers.discard(queue)
        if not subscribers:
            del self.queues[channel]
            return True
        return False

    def deliver(self, channel: str, event: Event) -> None:
        for queue in list(self.queues.get(channel, ())):
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:  # a stuck consumer must not stall the rest
                logger.warning("dropping an event for a slow subscriber on %s", channel)


async def _drain(queue: asyncio.Queue[Event]) -> AsyncIterator[Event]:
    while True:
        yield await queue.get()


class InProcessBroker:
    """Events stay inside this process."""

    def __init__(self) -> None:
        self._fanout = _Fanout()

    async def publish(self, channel: str, event: Event) -> None:
        # Round-trip through JSON so both brokers hand subscribers the same shapes.
        self._fanout.deliver(channel, json.loads(json.dumps(event)))

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[AsyncIterator[Event]]:
        queue = self._fanout.add(channel)
        try:
            yield _drain(queue)
        finally:
            self._fanout.remove(channel, queue)

    async def close(self) -> None:
        return None


class RedisBroker:
    """Events cross instances through Redis pub/sub on one shared connection."""

    def __init__(self, redis: Redis, *, prefix: str = "llmgw:") -> None:
        self._redis = redis
        self._prefix = prefix
        self._fanout = _Fanout()
        self._pubsub: PubSub | None = None
        self._reader: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def publish(self, channel: str, event: Event) -> None:
        await self._redis.publish(self._prefix + channel, json.dumps(event))

    async def _ensure_reader(self) -> PubSub:
        if self._pubsub is None:
            self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        if self._reader is None or self._reader.done():
            self._reader = asyncio.create_task(self._read(self._pubsub), name="redis-broker")
        return self._pubsub

    async def _read(self, pubsub: PubSub) -> None:
        while True:
            if not pubsub.subscribed:
                await asyncio.sleep(0.05)
                continue
            try:
                message = await pubsub.get_message(timeout=1.0)
            except Exception:  # connection trouble: log, back off, keep serving
                logger.exception("redis broker read failed")
                await asyncio.sleep(0.5)
                continue
            if message is None or message.get("type") != "message":
                continue
            channel = message["channel"]
            if isinstance(channel, bytes):
                channel = channel.decode()
            self._fanout.deliver(channel.removeprefix(self._prefix), json.loads(message["data"]))

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[AsyncIterator[Event]]:
        async with self._lock:
            pubsub = await self._ensure_reader()
            first = channel not in self._fanout.queues
            queue = self._fanout.add(channel)
            if first:
                # Subscribed before yielding: nothing published after this is missed.
                await pubsub.subscribe(self._prefix + channel)
        try:
            yield _drain(queue)
        finally:
            async with self._lock:
                if self._fanout.remove(channel, queue) and self._pubsub is not None:
                    await self._pubsub.unsubscribe(self._prefix + channel)

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._pubsub is not None:
            await self._pubsub.aclose()  # type: ignore[no-untyped-call]
