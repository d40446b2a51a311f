"""A chat with the built-in mock model, over a real server and websocket."""

from __future__ import annotations

from typing import Any

from llm_gateway.settings import Settings
from tests.live import graphql_socket, live_server
from tests.support import token

EVENTS = """subscription($dialogId: UUID!) {
  messageEvents(dialogId: $dialogId) {
    __typename
    ... on MessageStarted { message { id status role } }
    ... on MessageDelta { messageId seq text }
    ... on MessageCompleted {
      message { id status content chargedTokens promptTokens completionTokens }
                              usage { promptTokens completionTokens chargedTokens costUsd }
                              balance { balance available reserved } }
    ... on MessageFailed { messageId code errorMessage final { status content } }
  }
}"""
SEND = """mutation($input: SendMessageInput!) {
  sendMessage(input: $input) {
    replayed
    userMessage { id role content status }
    assistantMessage { id role status parentId modelName }
  }
}"""


async def test_mock_chat_end_to_end(settings: Settings) -> None:
    auth = {"Authorization": f"Bearer {token(7)}"}
    async with live_server(settings) as server, graphql_socket(server, auth) as socket:
        created = await socket.execute("mutation { createDialog(input: {}) { id title } }")
        dialog_id = created["data"]["createDialog"]["id"]
        operation = await socket.subscribe(EVENTS, {"dialogId": dialog_id})
        events = socket.events(operation)
        # Wait until the subscription is live: a balance query round-trips after it.
        sent = await _send_via_http(server.base_url, dialog_id, "Hello there, mock!")
        assistant_id = sent["assistantMessage"]["id"]
        assert sent["assistantMessage"]["status"] == "STREAMING"
        seen: list[dict[str, Any]] = []
        async for payload in events:
            event = payload["data"]["messageEvents"]
            seen.append(event)
            if event["__typename"] in ("MessageCompleted", "MessageFailed"):
                break
        kinds = [e["__typename"] for e in seen]
        # The subscription may go live just after the answer started: then its first
        # event is the text so far (one delta), never a gap.
        assert set(kinds[:-1]) <= {"MessageStarted", "MessageDelta"}
        assert kinds[-1] == "MessageCompleted"
        deltas = [e for e in seen if e["__typename"] == "MessageDelta"]
        seqs = [d["seq"] for d in deltas]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
        done = seen[-1]
        assert done["message"]["id"] == assistant_id
        assert done["message"]["content"] == "".join(d["text"] for d in deltas)
        assert "Hello there, mock!" in done["message"]["content"]
        charged = done["usage"]["chargedTokens"]
        # The mock model is free: its cost is a plain zero, never "0E-8".
        assert done["usage"]["costUsd"] == "0.00000000"
        assert charged == done["usage"]["promptTokens"] + done["usage"]["completionTokens"]
        assert done["balance"] == {
            "balance": 10_000 - charged,
            "available": 10_000 - charged,
            "reserved": 0,
        }


async def _send_via_http(base_url: str, dialog_id: str, content: str) -> dict[str, Any]:
    import httpx

    async with httpx.AsyncClient(base_url=base_url) as client:
        response = await client.post(
            "/graphql",
            json={
                "query": SEND,
                "variables": {"input": {"dialogId": dialog_id, "content": content}},
            },
            headers={"Authorization": f"Bearer {token(7)}"},
        )
    body = response.json()
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["sendMessage"]
    return result
