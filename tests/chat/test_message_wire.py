"""Messages on the broker: what a subscriber builds from an event equals the stored row."""

from __future__ import annotations

import json
from typing import Any

from llm_gateway.schema.chat.types import MessageType
from llm_gateway.services.chat.message_wire import message_of, message_payload
from tests.chat_support import finished, new_dialog, send
from tests.support import GraphQLClient


async def test_a_finished_answer_survives_the_trip(gql: GraphQLClient, app: Any) -> None:
    dialog = await new_dialog(gql)
    sent = (await send(gql, dialog, "Hi there")).ok()["sendMessage"]
    row = await finished(app, sent["assistantMessage"]["id"])
    assert row.status == "complete"
    assert row.cost_usd is not None
    # Through JSON, as the Redis broker carries it.
    rebuilt = message_of(json.loads(json.dumps(message_payload(row))))
    assert rebuilt is not None
    assert MessageType.from_row(rebuilt) == MessageType.from_row(row)
    assert rebuilt.cost_usd == row.cost_usd


def test_a_missing_or_malformed_payload_means_read_the_row() -> None:
    assert message_of(None) is None
    assert message_of({"id": "not-a-uuid"}) is None
    assert message_of({"id": "0" * 32}) is None  # fields missing
    assert message_of("text") is None
