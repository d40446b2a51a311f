"""The broker: publish JSON events on named channels, subscribe to them.

``InProcessBroker`` serves one process (the embedded default). ``RedisBroker`` serves many
instances through Redis pub/sub, multiplexing every local subscriber over one Redis
connection, so an idle subscription costs a queue, not a socket.

Producers ``send`` the typed events of ``broker_events``, which owns every channel and JSON.
The broker carries live delivery only: money, message state and recovery live in the
database. So publishing never raises (an event that cannot be sent is dropped and logged,
and the caller learns it from the result), while a subscription ends with
``ServiceUnavailable`` when the broker drops, so its consumer can end cleanly. A Redis
broker that lost its server keeps trying to reconnect by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from llm_gateway.errors import ServiceUnavailable
from llm_gateway.services.plumbing.broker_events import BrokerEvent
from llm_gateway.services.plumbing.fanout import (
    UNAVAILABLE_MESSAGE,
    Event,
    Fanout,
    Subscription,
)
from llm_gateway.services.plumbing.outbox import Outbox, decode, encode

__all__ = [
    "UNAVAILABLE_MESSAGE",
    "Broker",
    "Event",
    "InProcessBroker",
    "RedisBroker",
    "Subscription",
    "ensure_available",
]

logger = logging.getLogger("llm_gateway.broker")

REDIS_CALL_SECONDS = 3.0  # a Redis that neither answers nor refuses counts as down
RECONNECT_SECONDS = 0.5


class Broker(Protocol):
    @property
    def available(self) -> bool:
        """False while the broker is known to be down (no I/O: a flag kept up to date)."""
        ...

    async def publish(self, channel: str, event: Event) -> bool:
        """Send ``event``; False when it could not be sent (logged, never raised)."""
        ...

    async def send(self, event: BrokerEvent) -> bool:
        """``publish`` a typed event on its channel, as its JSON."""
        ...

    def subscribe(self, channel: str) -> contextlib.AbstractAsyncContextManager[Subscription]:
        """Events on ``channel`` from now on; raises ``ServiceUnavailable`` when down."""
        ...

    async def close(self) -> None: ...


def ensure_available(broker: Broker) -> None:
    """Refuse work that needs live delivery while the broker is down (before any hold)."""
    if not broker.available:
        raise ServiceUnavailable(UNAVAILABLE_MESSAGE)


class InProcessBroker:
    """Events stay inside this process."""

    def __init__(self) -> None:
        self._fanout = Fanout()

    @property
    def available(self) -> bool:
        return True

    async def publish(self, channel: str, event: Event) -> bool:
        # Round-trip through JSON so both brokers hand subscribers the same shapes.
        self._fanout.deliver(channel, decode(encode(event)))
        return True

    async def send(self, event: BrokerEvent) -> bool:
        return await self.publish(event.channel, event.to_wire())

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[Subscription]:
        queue = self._fanout.add(channel)
        try:
            yield Subscription(queue)
        finally:
            self._fanout.remove(channel, queue)

    async def close(self) -> None:
        return None


class RedisBroker:
    """Events cross instances through Redis pub/sub on one shared connection.

    One reader task owns the connection's state. When Redis fails (a publish or the
    reader sees it), the broker turns unavailable at once: every local subscription ends
    with ``ServiceUnavailable`` and publishes are dropped without a round trip. The reader
    then pings every ``RECONNECT_SECONDS`` and, once Redis answers, starts a fresh pub/sub
    connection; new subscriptions work again from then on.
    """

    def __init__(self, redis: Redis, *, prefix: str = "llmgw:") -> None:
        self._redis = redis
        self._prefix = prefix
        self._fanout = Fanout()
        self._pubsub: PubSub | None = None
        self._reader: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._available = True  # until Redis says otherwise
        self._closed = False
        self._outbox = Outbox(redis, timeout=REDIS_CALL_SECONDS, on_error=self._lost)

    @property
    def available(self) -> bool:
        return self._available

    async def publish(self, channel: str, event: Event) -> bool:
        if not self._available:
            return False
        return await self._outbox.publish(self._prefix + channel, encode(event))

    async def send(self, event: BrokerEvent) -> bool:
        return await self.publish(event.channel, event.to_wire())

    def _ensure_reader(self) -> None:
        if not self._closed and (self._reader is None or self._reader.done()):
            # A context of its own: started from whichever request first needed it, it
            # serves them all, and its log lines must not name that request or its user.
            self._reader = asyncio.create_task(
                self._read(), name="redis-broker", context=contextvars.Context()
            )

    def _lost(self, error: BaseException) -> None:
        """Redis failed: end every subscription now; the reader reconnects."""
        if self._available:
            logger.warning("broker lost Redis (%s: %s); reconnecting", type(error).__name__, error)
        self._available = False
        self._fanout.end_all()
        self._ensure_reader()

    async def _read(self) -> None:
        while not self._closed:
            if not self._available:
                await self._reconnect()
                continue
            pubsub = self._pubsub
            if pubsub is None or not pubsub.subscribed:
                await asyncio.sleep(0.05)
                continue
            try:
                message = await pubsub.get_message(timeout=1.0)
            except (RedisError, OSError) as exc:
                self._lost(exc)
                continue
            if message is None or message.get("type") != "message":
                continue
            channel = message["channel"]
            if isinstance(channel, bytes):
                channel = channel.decode()
            self._fanout.deliver(channel.removeprefix(self._prefix), decode(message["data"]))

    async def _reconnect(self) -> None:
        async with self._lock:
            old, self._pubsub = self._pubsub, None
        if old is not None:
            await _close_quietly(old)
        try:
            async with asyncio.timeout(REDIS_CALL_SECONDS):
                # Pooled connections to the server that went away are dead: start afresh.
                await self._redis.connection_pool.disconnect()
                await self._redis.ping()
        except (RedisError, OSError, TimeoutError):
            await asyncio.sleep(RECONNECT_SECONDS)
            return
        self._available = True
        logger.warning("broker reconnected to Redis")

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[Subscription]:
        self._ensure_reader()
        if not self._available:
            raise ServiceUnavailable(UNAVAILABLE_MESSAGE)
        async with self._lock:
            if self._pubsub is None:
                self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            pubsub = self._pubsub
            first = channel not in self._fanout.queues
            queue = self._fanout.add(channel)
            if first:
                # Subscribed before yielding: nothing published after this is missed.
                try:
                    async with asyncio.timeout(REDIS_CALL_SECONDS):
                        await pubsub.subscribe(self._prefix + channel)
                except (RedisError, OSError, TimeoutError) as exc:
                    self._fanout.remove(channel, queue)
                    self._lost(exc)
                    raise ServiceUnavailable(UNAVAILABLE_MESSAGE) from None
        try:
            yield Subscription(queue)
        finally:
            async with self._lock:
                last = self._fanout.remove(channel, queue)
                if last and self._available and self._pubsub is pubsub:
                    try:
                        async with asyncio.timeout(REDIS_CALL_SECONDS):
                            await pubsub.unsubscribe(self._prefix + channel)
                    except (RedisError, OSError, TimeoutError) as exc:
                        self._lost(exc)

    async def close(self) -> None:
        self._closed = True
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        self._fanout.end_all()
        if self._pubsub is not None:
            await _close_quietly(self._pubsub)
            self._pubsub = None


async def _close_quietly(pubsub: PubSub) -> None:
    with contextlib.suppress(RedisError, OSError, TimeoutError):
        async with asyncio.timeout(REDIS_CALL_SECONDS):
            await pubsub.aclose()  # type: ignore[no-untyped-call]
