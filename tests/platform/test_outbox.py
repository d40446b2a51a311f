"""The Redis broker's pipelined publishes: many at once arrive complete and in order, and a
Redis that dies reports every queued message unsent (never raises) and takes the broker
down, as a single publish did."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from redis.asyncio import Redis

from llm_gateway.services.plumbing import broker_events as wire
from llm_gateway.services.plumbing.broker import RedisBroker
from llm_gateway.services.plumbing.outbox import decode, encode
from tests.faults import redis_server


async def _received(
    broker: RedisBroker, channel: str, count: int, ready: asyncio.Event
) -> list[dict[str, object]]:
    got: list[dict[str, object]] = []
    async with broker.subscribe(channel) as subscription:
        ready.set()
        while len(got) < count:
            event = await subscription.within(5.0)
            assert event is not None, f"only {len(got)} of {count} arrived"
            got.append(event)
    return got


async def test_concurrent_publishes_arrive_complete_and_in_order(redis_available: str) -> None:
    redis = Redis.from_url(redis_available)
    broker = RedisBroker(redis, prefix=f"test-outbox-{uuid.uuid4().hex[:8]}:")
    dialog = uuid.uuid4()
    message = uuid.uuid4()
    channel = wire.dialog_channel(dialog)
    ready = asyncio.Event()
    try:
        receiver = asyncio.create_task(_received(broker, channel, 200, ready))
        await ready.wait()
        # 200 publishes in flight at once, as many running answers make them.
        sent = await asyncio.gather(
            *(broker.send(wire.MessageDelta(dialog, message, seq, f"t{seq}")) for seq in range(200))
        )
        assert sent == [True] * 200
        got = await receiver
    finally:
        await broker.close()
        await redis.aclose()
    assert [event["seq"] for event in got] == list(range(200))
    assert [event["text"] for event in got] == [f"t{seq}" for seq in range(200)]


async def test_a_dead_redis_reports_every_queued_message_unsent(tmp_path: Path) -> None:
    async with redis_server(tmp_path / "redis") as server:
        redis = Redis.from_url(server.url)
        broker = RedisBroker(redis)
        try:
            dialog, message = uuid.uuid4(), uuid.uuid4()
            assert await broker.send(wire.MessageDelta(dialog, message, 1, "a"))
            await server.kill()
            sent = await asyncio.gather(
                *(broker.send(wire.MessageDelta(dialog, message, s, "b")) for s in range(2, 30))
            )
            assert not any(sent)
            assert broker.available is False
        finally:
            await broker.close()
            await redis.aclose()


@pytest.mark.parametrize(
    "event",
    [
        {"text": "plain", "seq": 1},
        {"text": "a lone surrogate \ud800 a provider escaped", "seq": 2},
        {"big": 2**70},
    ],
)
def test_every_event_round_trips_through_its_json(event: dict[str, object]) -> None:
    assert decode(encode(event)) == event
