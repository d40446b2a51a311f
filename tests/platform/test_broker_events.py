"""The broker protocol: every event's JSON is what instances of earlier versions send and
read (a rolling deploy shares one Redis), and what arrives decodes back to the event."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest

from llm_gateway.services.money.balance_wire import view_of, view_payload
from llm_gateway.services.money.balances import BalanceView, Window
from llm_gateway.services.plumbing import broker_control as control
from llm_gateway.services.plumbing import broker_events as wire

DIALOG = uuid.UUID("00000000-0000-0000-0000-0000000000d1")
MESSAGE = uuid.UUID("00000000-0000-0000-0000-0000000000a1")
ROW = {"id": str(MESSAGE), "content": "Paris"}
VIEW = BalanceView(
    user_id=7,
    balance=9_000,
    reserved=300,
    lifetime_used=1_000,
    daily=Window(
        "daily",
        5_000,
        1_000,
        dt.datetime(2026, 12, 3, tzinfo=dt.UTC),
        dt.datetime(2026, 12, 4, tzinfo=dt.UTC),
    ),
    monthly=Window(
        "monthly",
        None,
        1_000,
        dt.datetime(2026, 12, 1, tzinfo=dt.UTC),
        dt.datetime(2027, 1, 1, tzinfo=dt.UTC),
    ),
    created_at=dt.datetime(2026, 11, 1, 12, tzinfo=dt.UTC),
)
BALANCE = view_payload(VIEW)

# (event, its channel, the JSON an earlier version put on the wire for it)
KNOWN: list[tuple[Any, str, dict[str, Any]]] = [
    (
        wire.MessageStarted(DIALOG, MESSAGE, ROW),
        f"dialog:{DIALOG}",
        {"type": "started", "messageId": str(MESSAGE), "row": ROW},
    ),
    (
        wire.MessageDelta(DIALOG, MESSAGE, 3, "Par"),
        f"dialog:{DIALOG}",
        {"type": "delta", "seq": 3, "text": "Par", "messageId": str(MESSAGE)},
    ),
    (
        wire.MessageSnapshot(DIALOG, MESSAGE, 3, "Paris is"),
        f"dialog:{DIALOG}",
        {"type": "snapshot", "seq": 3, "text": "Paris is", "messageId": str(MESSAGE)},
    ),
    (
        wire.MessageCompleted(DIALOG, MESSAGE, ROW),
        f"dialog:{DIALOG}",
        {"type": "completed", "row": ROW, "messageId": str(MESSAGE)},
    ),
    (  # with the balance its charge left, read as it committed
        wire.MessageCompleted(DIALOG, MESSAGE, ROW, BALANCE),
        f"dialog:{DIALOG}",
        {"type": "completed", "row": ROW, "balance": BALANCE, "messageId": str(MESSAGE)},
    ),
    (
        wire.MessageFailed(DIALOG, MESSAGE, "RATE_LIMITED", "try later", ROW),
        f"dialog:{DIALOG}",
        {
            "type": "failed",
            "code": "RATE_LIMITED",
            "message": "try later",
            "row": ROW,
            "messageId": str(MESSAGE),
        },
    ),
    (  # the sweeper's: no row, subscribers read it back
        wire.MessageFailed(DIALOG, MESSAGE, "INTERRUPTED", "stopped"),
        f"dialog:{DIALOG}",
        {"type": "failed", "messageId": str(MESSAGE), "code": "INTERRUPTED", "message": "stopped"},
    ),
    (wire.BalanceChanged(7, "topup"), "balance:7", {"userId": 7, "reason": "topup"}),
    (wire.ConfigChanged("OPENAI_API_KEY"), "config", {"key": "OPENAI_API_KEY"}),
    (wire.ConfigChanged(wire.MODELS_CHANGED_KEY), "config", {"key": "models"}),
    (wire.ApiKeyRevoked(MESSAGE), "api-keys", {"keyId": str(MESSAGE)}),
    (
        control.CancelRequest(MESSAGE),
        "generation-control",
        {"type": "cancel", "messageId": str(MESSAGE)},
    ),
    (
        control.SnapshotRequest(DIALOG),
        "generation-control",
        {"type": "snapshot", "dialogId": str(DIALOG)},
    ),
]


def _decode(channel: str, data: dict[str, Any]) -> Any:
    if channel.startswith("dialog:"):
        return wire.decode_dialog_event(DIALOG, data)
    if channel.startswith("balance:"):
        return wire.BalanceChanged.from_wire(data)
    if channel == wire.CONFIG_CHANNEL:
        return wire.ConfigChanged.from_wire(data)
    if channel == wire.API_KEYS_CHANNEL:
        return wire.ApiKeyRevoked.from_wire(data)
    return control.decode_control(data)


@pytest.mark.parametrize(("event", "channel", "data"), KNOWN)
def test_every_event_keeps_its_channel_and_json(
    event: Any, channel: str, data: dict[str, Any]
) -> None:
    assert event.channel == channel
    assert event.to_wire() == data
    assert _decode(channel, data) == event


@pytest.mark.parametrize(
    "data",
    [
        {"type": "progress", "messageId": str(MESSAGE)},  # a newer instance's event
        {"type": "delta", "messageId": "not-a-uuid", "seq": 1, "text": "x"},
        {"type": "delta", "messageId": str(MESSAGE)},
        {"messageId": str(MESSAGE)},
    ],
)
def test_an_event_this_version_cannot_read_is_dropped(data: dict[str, Any]) -> None:
    assert wire.decode_dialog_event(DIALOG, data) is None
    assert control.decode_control(data) is None
    assert wire.ApiKeyRevoked.from_wire(data) is None


def test_a_balance_view_survives_its_wire_form() -> None:
    assert view_of(BALANCE) == VIEW
    assert view_of(view_payload(VIEW)) == VIEW


@pytest.mark.parametrize(
    "payload", [None, "x", {}, {**BALANCE, "daily": [1]}, {**BALANCE, "balance": "lots"}]
)
def test_a_malformed_balance_is_read_back_instead(payload: Any) -> None:
    assert view_of(payload) is None
