"""Every event instances exchange on the broker: its channel, its fields, its JSON.

This module is the broker protocol. Producers build one of these frozen dataclasses and
``broker.send`` it; consumers subscribe to a channel named here and decode what arrives
with the ``decode_*`` function for that channel (requests to the instance running a
generation are in ``broker_control``). The JSON each event travels as is fixed:
instances of different versions share one Redis during a rolling deploy, and the benchmarks
read the same channels, so ``to_wire`` must keep producing exactly these keys.

Decoding is lenient: an event of an unknown type (a newer instance) or a malformed one is
dropped with a warning instead of ending the consumer's subscription.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

logger = logging.getLogger("llm_gateway.broker")

Wire = dict[str, Any]
"""An event as it travels: a JSON object."""

CONFIG_CHANNEL = "config"
"""Runtime settings, credentials or the model registry changed somewhere."""

MODELS_CHANGED_KEY = "models"
"""The ``key`` of the ``ConfigChanged`` sent after a change to the model registry."""

API_KEYS_CHANNEL = "api-keys"
"""A gateway API key was revoked: every instance drops it from its cache."""


def dialog_channel(dialog_id: uuid.UUID | str) -> str:
    """A dialog's answer events: started, numbered deltas and snapshots, one end each."""
    return f"dialog:{dialog_id}"


def balance_channel(user_id: int) -> str:
    """A user's balance notices."""
    return f"balance:{user_id}"


# -- a dialog's answers ----------------------------------------------------------------------


class _OnDialog:
    """An answer's event: it travels on its dialog's channel."""

    __slots__ = ()
    dialog_id: uuid.UUID

    @property
    def channel(self) -> str:
        return dialog_channel(self.dialog_id)


@dataclass(frozen=True, slots=True)
class MessageStarted(_OnDialog):
    """An answer was saved as streaming; ``row`` is its ``message_wire`` payload."""

    dialog_id: uuid.UUID
    message_id: uuid.UUID
    row: Wire | None = None
    kind: ClassVar[str] = "started"

    def to_wire(self) -> Wire:
        return _answer(self.kind, self.message_id, row=self.row)


@dataclass(frozen=True, slots=True)
class MessageDelta(_OnDialog):
    """Text an answer produced since delta ``seq - 1`` (sequence numbers start at 1)."""

    dialog_id: uuid.UUID
    message_id: uuid.UUID
    seq: int
    text: str
    kind: ClassVar[str] = "delta"

    def to_wire(self) -> Wire:
        return _answer(self.kind, self.message_id, seq=self.seq, text=self.text)


@dataclass(frozen=True, slots=True)
class MessageSnapshot(_OnDialog):
    """An answer's whole text through delta ``seq``, sent on a ``SnapshotRequest``."""

    dialog_id: uuid.UUID
    message_id: uuid.UUID
    seq: int
    text: str
    kind: ClassVar[str] = "snapshot"

    def to_wire(self) -> Wire:
        return _answer(self.kind, self.message_id, seq=self.seq, text=self.text)


@dataclass(frozen=True, slots=True)
class MessageCompleted(_OnDialog):
    """An answer ended complete; ``row`` is its final ``message_wire`` payload, ``balance``
    the user's balance after its charge (``balance_wire``; None: subscribers read it)."""

    dialog_id: uuid.UUID
    message_id: uuid.UUID
    row: Wire | None = None
    balance: Wire | None = None
    kind: ClassVar[str] = "completed"

    def to_wire(self) -> Wire:
        return _answer(self.kind, self.message_id, row=self.row, balance=self.balance)


@dataclass(frozen=True, slots=True)
class MessageFailed(_OnDialog):
    """An answer ended otherwise (failed, cancelled, interrupted, refused).

    The sweeper sends it without ``row``: subscribers then read the row back.
    """

    dialog_id: uuid.UUID
    message_id: uuid.UUID
    code: str
    message: str
    row: Wire | None = None
    kind: ClassVar[str] = "failed"

    def to_wire(self) -> Wire:
        return _answer(
            self.kind, self.message_id, code=self.code, message=self.message, row=self.row
        )


DialogEvent = MessageStarted | MessageDelta | MessageSnapshot | MessageCompleted | MessageFailed
AnswerEnd = MessageCompleted | MessageFailed


def _answer(kind: str, message_id: uuid.UUID, **fields: Any) -> Wire:
    """An answer's event; a field left out (no row, no balance): subscribers read it back."""
    present = {name: value for name, value in fields.items() if value is not None}
    return {"type": kind, "messageId": str(message_id), **present}


def _object(value: object) -> Wire | None:
    return value if isinstance(value, dict) else None


def decode_dialog_event(dialog_id: uuid.UUID, wire: Wire) -> DialogEvent | None:
    """The event received on ``dialog_channel(dialog_id)``, or None (unknown, malformed)."""
    try:
        kind = wire.get("type")
        message_id = uuid.UUID(wire["messageId"])
        row = _object(wire.get("row"))
        if kind == MessageStarted.kind:
            return MessageStarted(dialog_id, message_id, row)
        if kind == MessageDelta.kind:
            return MessageDelta(dialog_id, message_id, int(wire["seq"]), str(wire["text"]))
        if kind == MessageSnapshot.kind:
            return MessageSnapshot(dialog_id, message_id, int(wire["seq"]), str(wire["text"]))
        if kind == MessageCompleted.kind:
            return MessageCompleted(dialog_id, message_id, row, _object(wire.get("balance")))
        if kind == MessageFailed.kind:
            code, text = str(wire.get("code", "")), str(wire.get("message", ""))
            return MessageFailed(dialog_id, message_id, code, text, row)
    except (KeyError, TypeError, ValueError, AttributeError):
        pass
    dropped(dialog_channel(dialog_id), wire)
    return None


# -- notices -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BalanceChanged:
    """A user's balance or limits moved (``reason``: topup, adjustment, limits, usage,
    released); subscribers read the new balance themselves."""

    user_id: int
    reason: str

    @property
    def channel(self) -> str:
        return balance_channel(self.user_id)

    def to_wire(self) -> Wire:
        return {"userId": self.user_id, "reason": self.reason}

    @classmethod
    def from_wire(cls, wire: Wire) -> BalanceChanged | None:
        try:
            return cls(int(wire["userId"]), str(wire.get("reason", "")))
        except (KeyError, TypeError, ValueError, AttributeError):
            dropped("a balance channel", wire)
            return None


@dataclass(frozen=True, slots=True)
class ConfigChanged:
    """A runtime setting changed (``key``), or the model registry (``key`` "models"):
    every instance re-reads its settings and drops cached credentials."""

    key: str

    @property
    def channel(self) -> str:
        return CONFIG_CHANNEL

    def to_wire(self) -> Wire:
        return {"key": self.key}

    @classmethod
    def from_wire(cls, wire: Wire) -> ConfigChanged | None:
        key = wire.get("key") if isinstance(wire, dict) else None
        if isinstance(key, str):
            return cls(key)
        dropped(CONFIG_CHANNEL, wire)
        return None


@dataclass(frozen=True, slots=True)
class ApiKeyRevoked:
    """An API key was revoked: every instance forgets what it cached about it."""

    key_id: uuid.UUID

    @property
    def channel(self) -> str:
        return API_KEYS_CHANNEL

    def to_wire(self) -> Wire:
        return {"keyId": str(self.key_id)}

    @classmethod
    def from_wire(cls, wire: Wire) -> ApiKeyRevoked | None:
        try:
            return cls(uuid.UUID(wire["keyId"]))
        except (KeyError, TypeError, ValueError, AttributeError):
            dropped(API_KEYS_CHANNEL, wire)
            return None


class BrokerEvent(Protocol):
    """What ``broker.send`` takes: an event that names its channel and its JSON (those here,
    and the control requests of ``broker_control``)."""

    @property
    def channel(self) -> str: ...

    def to_wire(self) -> Wire: ...


def dropped(channel: str, wire: object) -> None:
    """Log an event this version cannot read (it is then ignored)."""
    logger.warning("ignoring an event on %s that this version cannot read: %.200r", channel, wire)
