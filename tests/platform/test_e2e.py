"""End to end: the real server process, used as the frontend uses it.

``llm-gateway serve`` runs in its own process on a free port (PostgreSQL, and Redis as the
broker), the OpenAI fake plays the provider; the test speaks HTTP and graphql-transport-ws.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import REDIS_URL
from tests.fakes import DEFAULT_OPENAI_KEY, OpenAIFake, Scenario, fake_openai
from tests.live import LiveServer, gateway_process, graphql_socket
from tests.support import token

EVENTS = """subscription($dialogId: UUID!) {
  messageEvents(dialogId: $dialogId) {
    __typename
    ... on MessageDelta { seq text }
    ... on MessageCompleted {
      message { id status content modelName }
      usage { promptTokens completionTokens chargedTokens costUsd }
      balance { balance reserved available }
    }
    ... on MessageFailed { code errorMessage }
  }
}"""


@pytest.fixture
async def openai() -> AsyncIterator[OpenAIFake]:
    async with fake_openai() as fake:
        yield fake


@pytest.fixture
async def server(
    database_url: str, openai: OpenAIFake, redis_available: str, tmp_path: Path
) -> AsyncIterator[LiveServer]:
    async with gateway_process(
        tmp_path,
        DATABASE_URL=database_url,
        REDIS_URL=REDIS_URL,
        OPENAI_API_KEY=DEFAULT_OPENAI_KEY,
        OPENAI_BASE_URL=openai.base_url,
    ) as live:
        yield live


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_a_frontend_chats_with_the_real_server(
    server: LiveServer, openai: OpenAIFake
) -> None:
    reply = "Hello! The gateway is streaming this answer to you."
    openai.script(
        Scenario(text=reply, chunks=8, chunk_delay=0.01, prompt_tokens=21, completion_tokens=12)
    )
    bearer = {"Authorization": f"Bearer {token(42)}"}
    async with httpx.AsyncClient(base_url=server.base_url, headers=bearer) as http:

        async def gql(query: str, variables: dict[str, Any] | None = None) -> Any:
            response = await http.post("/graphql", json={"query": query, "variables": variables})
            assert response.status_code == 200
            body = response.json()
            assert "errors" not in body, body
            return body["data"]

        me = await gql("{ me { userId balance { balance } } }")
        assert me["me"] == {"userId": 42, "balance": {"balance": 10_000}}
        dialog = (await gql('mutation { createDialog(input: {model: "gpt-4-turbo"}) { id } }'))[
            "createDialog"
        ]
        async with graphql_socket(server, {"Authorization": f"Bearer {token(42)}"}) as socket:
            events = socket.events(await socket.subscribe(EVENTS, {"dialogId": dialog["id"]}))
            # The subscription is live once an empty dialog's stream is registered; a
            # send right after is caught up by the snapshot if it raced ahead.
            sent = await gql(
                "mutation($input: SendMessageInput!) { sendMessage(input: $input) "
                "{ userMessage { id } assistantMessage { id status } } }",
                {"input": {"dialogId": dialog["id"], "content": "Say hello"}},
            )
            assert sent["sendMessage"]["assistantMessage"]["status"] == "STREAMING"
            deltas: list[dict[str, Any]] = []
            async for payload in events:
                event = payload["data"]["messageEvents"]
                if event["__typename"] == "MessageDelta":
                    deltas.append(event)
                elif event["__typename"] in ("MessageCompleted", "MessageFailed"):
                    completed = event
                    break
    assert completed["__typename"] == "MessageCompleted", completed
    assert "".join(d["text"] for d in deltas) == reply
    assert completed["message"]["content"] == reply
    assert completed["message"]["modelName"] == "gpt-4-turbo"
    assert completed["usage"]["promptTokens"] == 21
    assert completed["usage"]["completionTokens"] == 12
    assert completed["usage"]["chargedTokens"] == 33
    # gpt-4-turbo names GPT-5.4 now: 21 × 0.0025/1k + 12 × 0.015/1k
    assert completed["usage"]["costUsd"] == "0.00023250"
    assert completed["balance"] == {"balance": 9_967, "reserved": 0, "available": 9_967}

    async with httpx.AsyncClient(base_url=server.base_url, headers=bearer) as http:
        response = await http.post(
            "/graphql",
            json={
                "query": "query($id: UUID!) { messages(dialogId: $id) "
                "{ edges { node { role content status } } } "
                "dialog(id: $id) { title } }",
                "variables": {"id": dialog["id"]},
            },
        )
    data = response.json()["data"]
    assert [e["node"] for e in data["messages"]["edges"]] == [
        {"role": "USER", "content": "Say hello", "status": "COMPLETE"},
        {"role": "ASSISTANT", "content": reply, "status": "COMPLETE"},
    ]
    assert data["dialog"]["title"] == "Say hello"
    assert openai.chat_requests[-1].json["messages"] == [{"role": "user", "content": "Say hello"}]
