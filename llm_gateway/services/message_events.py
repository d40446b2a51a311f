"""A dialog's message events for one subscriber: the text so far, then live, no gap.

A subscriber that joins while an answer streams must first get what was already said,
then the live deltas, with nothing missing and nothing twice. It subscribes to the dialog
channel first, then asks the process running each generation for a snapshot (text and
sequence number so far); deltas up to the snapshot's ``seq`` are dropped, later ones
pass in order. If no snapshot comes (that process died), the saved partial text stands
in, and the sweeper will finish the message.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from llm_gateway.db.engine import Database
from llm_gateway.db.models import Message
from llm_gateway.services.events import Broker
from llm_gateway.services.generation import dialog_channel
from llm_gateway.services.message_wire import message_of

SNAPSHOT_WAIT_SECONDS = 3.0


@dataclass(frozen=True, slots=True)
class Started:
    message_id: uuid.UUID
    message: Message | None = None
    """The message as the event carried it (None: read it from the database)."""


@dataclass(frozen=True, slots=True)
class Delta:
    message_id: uuid.UUID
    seq: int
    text: str


@dataclass(frozen=True, slots=True)
class Completed:
    message_id: uuid.UUID
    message: Message | None = None


@dataclass(frozen=True, slots=True)
class Failed:
    message_id: uuid.UUID
    code: str
    message: str
    final: Message | None = None


MessageEvent = Started | Delta | Completed | Failed


async def _streaming_ids(db: Database, dialog_id: uuid.UUID) -> list[uuid.UUID]:
    async with db.read() as session:
        rows = await session.scalars(
            select(Message.id).where(Message.dialog_id == dialog_id, Message.status == "streaming")
        )
        return list(rows)


async def _saved_text(db: Database, message_id: uuid.UUID) -> tuple[str, str]:
    async with db.read() as session:
        row = await session.get(Message, message_id)
    return (row.status, row.content) if row is not None else ("failed", "")


class _Tracker:
    """Per-message ordering: buffer until the snapshot, then pass each seq once, in order."""

    def __init__(self) -> None:
        self.last_seq: dict[uuid.UUID, int] = {}
        self.waiting: dict[uuid.UUID, list[Delta]] = {}
        self.done: set[uuid.UUID] = set()

    def expect_snapshot(self, message_id: uuid.UUID) -> None:
        self.waiting[message_id] = []

    def started(self, message_id: uuid.UUID) -> bool:
        if message_id in self.last_seq or message_id in self.done:
            return False
        self.waiting.pop(message_id, None)
        self.last_seq[message_id] = 0
        return True

    def snapshot(self, message_id: uuid.UUID, seq: int, text: str) -> list[Delta]:
        if message_id not in self.waiting:
            return []  # we already follow it live
        buffered = self.waiting.pop(message_id)
        self.last_seq[message_id] = seq
        out = [Delta(message_id, seq, text)] if text else []
        for delta in sorted(buffered, key=lambda d: d.seq):
            out += self.delta(delta)
        return out

    def delta(self, delta: Delta) -> list[Delta]:
        if delta.message_id in self.waiting:
            self.waiting[delta.message_id].append(delta)
            return []
        last = self.last_seq.get(delta.message_id)
        if last is None or delta.seq <= last:
            return []  # unknown (before we joined, no snapshot asked) or a duplicate
        self.last_seq[delta.message_id] = delta.seq
        return [delta]

    def finished(self, message_id: uuid.UUID) -> bool:
        if message_id in self.done:
            return False
        self.done.add(message_id)
        self.waiting.pop(message_id, None)
        self.last_seq.pop(message_id, None)
        return True


async def dialog_events(
    db: Database,
    broker: Broker,
    dialog_id: uuid.UUID,
    request_snapshots: Callable[[uuid.UUID], Awaitable[None]],
) -> AsyncIterator[MessageEvent]:
    """Every message event of a dialog from now on, with in-flight answers caught up first."""
    tracker = _Tracker()
    async with broker.subscribe(dialog_channel(dialog_id)) as raw_events:
        in_flight = await _streaming_ids(db, dialog_id)
        for message_id in in_flight:
            tracker.expect_snapshot(message_id)
        if in_flight:
            await request_snapshots(dialog_id)
        deadline = asyncio.get_running_loop().time() + SNAPSHOT_WAIT_SECONDS
        iterator = aiter(raw_events)
        while True:
            timeout = None
            if tracker.waiting:
                timeout = max(0.0, deadline - asyncio.get_running_loop().time())
            try:
                raw = await asyncio.wait_for(anext(iterator), timeout)
            except TimeoutError:
                # The owner did not answer: it died. Show what was saved; the sweeper
                # will finish the message and its terminal event will follow.
                for message_id in list(tracker.waiting):
                    status, text = await _saved_text(db, message_id)
                    for out in tracker.snapshot(message_id, 0, text):
                        yield out
                    if status != "streaming" and tracker.finished(message_id):
                        yield (
                            Completed(message_id)
                            if status == "complete"
                            else Failed(message_id, "INTERRUPTED", "The answer was interrupted.")
                        )
                continue
            for event in _translate(tracker, raw):
                yield event


def _translate(tracker: _Tracker, raw: dict[str, Any]) -> list[MessageEvent]:
    message_id = uuid.UUID(raw["messageId"])
    kind = raw.get("type")
    if kind == "started":
        started = Started(message_id, message_of(raw.get("row")))
        return [started] if tracker.started(message_id) else []
    if kind == "snapshot":
        return list(tracker.snapshot(message_id, int(raw["seq"]), str(raw["text"])))
    if kind == "delta":
        return list(tracker.delta(Delta(message_id, int(raw["seq"]), str(raw["text"]))))
    if kind == "completed":
        completed = Completed(message_id, message_of(raw.get("row")))
        return [completed] if tracker.finished(message_id) else []
    if kind == "failed":
        if tracker.finished(message_id):
            code, text = str(raw.get("code", "")), str(raw.get("message", ""))
            return [Failed(message_id, code, text, message_of(raw.get("row")))]
        return []
    return []
