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
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from llm_gateway.db.engine import Database
from llm_gateway.db.models import Message
from llm_gateway.enums import MessageStatus
from llm_gateway.errors import ServiceUnavailable
from llm_gateway.services.chat.dialogs import get_dialog
from llm_gateway.services.chat.message_wire import message_of
from llm_gateway.services.money.balance_wire import view_of
from llm_gateway.services.money.balances import BalanceView
from llm_gateway.services.plumbing import broker_events as wire
from llm_gateway.services.plumbing.broker import Broker

logger = logging.getLogger("llm_gateway.message_events")

SNAPSHOT_WAIT_SECONDS = 3.0
IDLE_CHECK_SECONDS = 2.0
LOST_POLL_SECONDS = 1.0
LOST_WAIT_SECONDS = 90.0  # past the lease and a sweep: an orphan is recovered by then


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
    balance: BalanceView | None = None
    """The user's balance after the charge, as the event carried it (None: read it)."""


@dataclass(frozen=True, slots=True)
class Failed:
    message_id: uuid.UUID
    code: str
    message: str
    final: Message | None = None


MessageEvent = Started | Delta | Completed | Failed


async def _streaming_ids(db: Database, dialog_id: uuid.UUID, owner_id: int) -> list[uuid.UUID]:
    """The dialog's answers still streaming, once it is known to be the owner's and live
    (NOT_FOUND otherwise): one read for both."""
    async with db.read() as session:
        await get_dialog(session, owner_id, dialog_id)
        rows = await session.scalars(
            select(Message.id).where(
                Message.dialog_id == dialog_id, Message.status == MessageStatus.STREAMING
            )
        )
        return list(rows)


async def _stored(db: Database, message_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Message]:
    ids = list(message_ids)
    if not ids:
        return {}
    async with db.read() as session:
        rows = await session.scalars(select(Message).where(Message.id.in_(ids)))
        return {row.id: row for row in rows}


def _stored_end(row: Message) -> Completed | Failed:
    """The terminal event a finished message's stored row stands for."""
    if row.status == MessageStatus.COMPLETE:
        return Completed(row.id, row)
    code = row.error_code or row.status.upper()
    return Failed(row.id, code, row.error_message or "", row)


class _Tracker:
    """Per-message ordering: buffer until the snapshot, then pass each seq once, in order."""

    def __init__(self) -> None:
        self.last_seq: dict[uuid.UUID, int] = {}
        self.waiting: dict[uuid.UUID, list[Delta]] = {}
        self.done: set[uuid.UUID] = set()
        self.saved: set[uuid.UUID] = set()
        """Messages whose owner never answered: their saved text is still to be shown."""

    def use_saved(self, message_id: uuid.UUID) -> None:
        """No snapshot came: follow the message from its saved text on."""
        self.snapshot(message_id, 0, "")
        self.saved.add(message_id)

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
        self.saved.discard(message_id)
        return True


async def dialog_events(
    db: Database,
    broker: Broker,
    dialog_id: uuid.UUID,
    request_snapshots: Callable[[uuid.UUID], Awaitable[bool]],
    *,
    owner_id: int,
) -> AsyncIterator[MessageEvent]:
    """Every message event of ``owner_id``'s dialog from now on, with in-flight answers
    caught up first. NOT_FOUND before any event unless the dialog is theirs and live.

    The database, not the broker, says how an answer ended. While answers are followed
    and the channel is quiet for ``IDLE_CHECK_SECONDS``, their stored state is looked at,
    so an answer whose terminal event never came (its owner died and was recovered, or the
    broker dropped the event) still ends here. When the broker drops, the answers being
    followed are awaited in the database and end with their stored state; then the
    subscription ends with ``ServiceUnavailable``.
    """
    tracker = _Tracker()
    async with broker.subscribe(wire.dialog_channel(dialog_id)) as subscription:
        in_flight = await _streaming_ids(db, dialog_id, owner_id)
        for message_id in in_flight:
            tracker.expect_snapshot(message_id)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SNAPSHOT_WAIT_SECONDS
        if in_flight and not await request_snapshots(dialog_id):
            deadline = loop.time()  # nobody can answer: use the saved text at once
        while True:
            timeout: float | None = None
            if tracker.waiting:
                timeout = max(0.0, deadline - loop.time())
            elif tracker.last_seq:
                timeout = IDLE_CHECK_SECONDS
            try:
                raw = await subscription.within(timeout)
            except ServiceUnavailable:
                async for event in _await_stored_ends(db, tracker):
                    yield event
                raise
            if raw is not None:
                received = wire.decode_dialog_event(dialog_id, raw)
                for event in _translate(tracker, received) if received else ():
                    yield event
                continue
            if tracker.waiting:
                # The owner did not answer (it died, or cannot be reached): show what was
                # saved; the stored state ends the message once it is recovered.
                for message_id in list(tracker.waiting):
                    tracker.use_saved(message_id)
            for event in await _stored_ends(db, tracker):
                yield event


async def _stored_ends(db: Database, tracker: _Tracker) -> list[MessageEvent]:
    """The saved text of messages caught up from the database, and terminal events for
    followed messages the database has already finished (none while it cannot be read:
    the next look tries again)."""
    try:
        rows = await _stored(db, tracker.last_seq)
    except (SQLAlchemyError, OSError) as exc:
        logger.warning("could not read the state of followed answers: %s", exc)
        return []
    out: list[MessageEvent] = []
    for message_id, row in rows.items():
        if message_id in tracker.saved:
            tracker.saved.discard(message_id)
            if row.content:
                out.append(Delta(message_id, 0, row.content))
        if row.status != MessageStatus.STREAMING and tracker.finished(message_id):
            out.append(_stored_end(row))
    return out


async def _await_stored_ends(db: Database, tracker: _Tracker) -> AsyncIterator[MessageEvent]:
    """After the broker dropped: the followed answers' ends, as the database records them."""
    for message_id in list(tracker.waiting):
        tracker.use_saved(message_id)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + LOST_WAIT_SECONDS
    while tracker.last_seq and loop.time() < deadline:
        for event in await _stored_ends(db, tracker):
            yield event
        if tracker.last_seq:
            await asyncio.sleep(LOST_POLL_SECONDS)


def _translate(tracker: _Tracker, received: wire.DialogEvent) -> list[MessageEvent]:
    message_id = received.message_id
    match received:
        case wire.MessageStarted(row=row):
            started = Started(message_id, message_of(row))
            return [started] if tracker.started(message_id) else []
        case wire.MessageSnapshot(seq=seq, text=text):
            return list(tracker.snapshot(message_id, seq, text))
        case wire.MessageDelta(seq=seq, text=text):
            return list(tracker.delta(Delta(message_id, seq, text)))
        case wire.MessageCompleted(row=row, balance=balance):
            completed = Completed(message_id, message_of(row), view_of(balance))
            return [completed] if tracker.finished(message_id) else []
        case wire.MessageFailed(code=code, message=text, row=row):
            if tracker.finished(message_id):
                return [Failed(message_id, code, text, message_of(row))]
    return []
