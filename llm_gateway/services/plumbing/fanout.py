"""Local subscribers of a broker: one bounded queue each, and how a subscription ends.

Both brokers hand events to local subscribers the same way, so that part lives here: a
queue per subscriber (a stuck consumer loses events instead of stalling the rest), and the
``LOST`` marker that ends every subscription with ``ServiceUnavailable`` when the broker
drops.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from typing import Any, Final

from llm_gateway.errors import ServiceUnavailable

logger = logging.getLogger("llm_gateway.broker")

Event = dict[str, Any]
"""An event as a subscriber receives it: the JSON object that was published."""

QUEUE_LIMIT = 10_000
UNAVAILABLE_MESSAGE = "Live delivery is unavailable right now; please try again shortly."


class _Lost:
    """Put in a subscriber's queue when the broker dropped: its subscription ends."""


LOST: Final = _Lost()


class Subscription:
    """One subscriber's events, in order. Iterate, or ``within(seconds)`` to wait a while.

    Both raise ``ServiceUnavailable`` once the broker has dropped. Waiting a while is safe
    to repeat: unlike cancelling an async generator's ``anext``, it loses nothing.
    """

    def __init__(self, queue: asyncio.Queue[Event | _Lost]) -> None:
        self._queue = queue

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        return self._checked(await self._queue.get())

    async def within(self, seconds: float | None) -> Event | None:
        """The next event, or None when none came within ``seconds`` (None: wait on)."""
        try:
            async with asyncio.timeout(seconds):
                item = await self._queue.get()
        except TimeoutError:
            return None
        return self._checked(item)

    @staticmethod
    def _checked(item: Event | _Lost) -> Event:
        if isinstance(item, _Lost):
            raise ServiceUnavailable(UNAVAILABLE_MESSAGE)
        return item


class Fanout:
    """Local subscribers per channel; each gets its own bounded queue."""

    def __init__(self) -> None:
        self.queues: defaultdict[str, set[asyncio.Queue[Event | _Lost]]] = defaultdict(set)

    def add(self, channel: str) -> asyncio.Queue[Event | _Lost]:
        queue: asyncio.Queue[Event | _Lost] = asyncio.Queue(QUEUE_LIMIT)
        self.queues[channel].add(queue)
        return queue

    def remove(self, channel: str, queue: asyncio.Queue[Event | _Lost]) -> bool:
        """Drop a subscriber; True when it was the channel's last."""
        subscribers = self.queues.get(channel)
        if subscribers is None or queue not in subscribers:
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

    def end_all(self) -> None:
        """Every subscription ends (the broker dropped); the channels are forgotten."""
        for subscribers in self.queues.values():
            for queue in subscribers:
                if queue.full():  # the end must get through, even to a stuck consumer
                    queue.get_nowait()
                queue.put_nowait(LOST)
        self.queues.clear()
