"""Requests to whichever instance runs a generation, on ``CONTROL_CHANNEL``: cancel it, or
send a snapshot of its text so far. Part of the broker protocol (``broker_events``): the
JSON is fixed, and what this version cannot read is dropped with a warning.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import ClassVar

from llm_gateway.services.plumbing.broker_events import Wire, dropped

CONTROL_CHANNEL = "generation-control"
"""Requests to whichever instance runs a generation: cancel it, or snapshot its text."""


@dataclass(frozen=True, slots=True)
class CancelRequest:
    """Stop generating ``message_id``, wherever it runs."""

    message_id: uuid.UUID
    kind: ClassVar[str] = "cancel"

    @property
    def channel(self) -> str:
        return CONTROL_CHANNEL

    def to_wire(self) -> Wire:
        return {"type": self.kind, "messageId": str(self.message_id)}


@dataclass(frozen=True, slots=True)
class SnapshotRequest:
    """Send a ``MessageSnapshot`` of every answer of ``dialog_id`` running here."""

    dialog_id: uuid.UUID
    kind: ClassVar[str] = "snapshot"

    @property
    def channel(self) -> str:
        return CONTROL_CHANNEL

    def to_wire(self) -> Wire:
        return {"type": self.kind, "dialogId": str(self.dialog_id)}


ControlRequest = CancelRequest | SnapshotRequest


def decode_control(wire: Wire) -> ControlRequest | None:
    """The request received on ``CONTROL_CHANNEL``, or None (unknown, malformed)."""
    try:
        kind = wire.get("type")
        if kind == CancelRequest.kind:
            return CancelRequest(uuid.UUID(wire["messageId"]))
        if kind == SnapshotRequest.kind:
            return SnapshotRequest(uuid.UUID(wire["dialogId"]))
    except (KeyError, TypeError, ValueError, AttributeError):
        pass
    dropped(CONTROL_CHANNEL, wire)
    return None
