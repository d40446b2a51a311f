"""What a chat costs the database: three transactions for an answer that streams for less
than GENERATION_FLUSH_SECONDS (the subscription's read, the send, the finish), and the
completion carries the balance its charge left instead of a subscriber reading it. (Staff
settings are re-read once per CONFIG_CACHE_SECONDS per process, not per chat.)"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from llm_gateway.app import create_app
from llm_gateway.services.money.balances import existing_balance
from tests.chat.test_flow import EVENTS, chat_settings
from tests.factories import database_of
from tests.fakes import OpenAIFake, Scenario, fake_openai
from tests.live import GraphQLSocket, graphql_socket, serve_asgi
from tests.support import token

REPLY = "Paris is the capital."
SEND = """mutation($input: SendMessageInput!) {
  sendMessage(input: $input) { assistantMessage { id } }
}"""
AUTH = {"Authorization": f"Bearer {token(7)}"}


@pytest.fixture
async def openai() -> AsyncIterator[OpenAIFake]:
    async with fake_openai() as fake:
        yield fake


async def _dialog(socket: GraphQLSocket) -> str:
    created = await socket.execute(
        'mutation { createDialog(input: {model: "gpt-4-turbo"}) { id } }'
    )
    return str(created["data"]["createDialog"]["id"])


async def _chat(socket: GraphQLSocket, base_url: str, dialog_id: str) -> dict[str, Any]:
    """A chat as the frontend has it: subscribe, send, follow to the end; the end event."""
    events = socket.events(await socket.subscribe(EVENTS, {"dialogId": dialog_id}))
    variables = {"input": {"dialogId": dialog_id, "content": "Hi"}}
    async with httpx.AsyncClient(base_url=base_url) as client:
        sent = await client.post(
            "/graphql", json={"query": SEND, "variables": variables}, headers=AUTH
        )
    assert "errors" not in sent.json(), sent.json()
    async for payload in events:
        seen: dict[str, Any] = payload["data"]["messageEvents"]
        if seen["__typename"] in ("MessageCompleted", "MessageFailed"):
            return seen
    raise AssertionError("the subscription ended before the answer")


async def test_a_chat_takes_three_transactions_and_its_end_carries_the_balance(
    database_url: str, openai: OpenAIFake
) -> None:
    openai.script(
        Scenario(text=REPLY, chunks=6, chunk_delay=0.01),
        Scenario(text=REPLY, chunks=6, chunk_delay=0.01),
    )
    app = create_app(
        chat_settings(
            database_url, openai, generation_flush_seconds=30.0, config_cache_seconds=60.0
        )
    )
    begun: list[list[str]] = []

    def on_begin(connection: Any) -> None:
        begun.append(["begin"])

    def on_statement(*args: Any) -> None:
        if begun:
            begun[-1].append(args[2][:50])

    async with serve_asgi(app) as server, graphql_socket(server, AUTH) as socket:
        db = database_of(app)
        # The first chat also loads credentials and caches.
        await _chat(socket, server.base_url, await _dialog(socket))
        dialog_id = await _dialog(socket)
        event.listen(db.engine.sync_engine, "begin", on_begin)
        event.listen(db.engine.sync_engine, "before_cursor_execute", on_statement)
        try:
            completed = await _chat(socket, server.base_url, dialog_id)
        finally:
            event.remove(db.engine.sync_engine, "begin", on_begin)
            event.remove(db.engine.sync_engine, "before_cursor_execute", on_statement)
        async with db.read() as session:
            after = await existing_balance(session, 7, app.state.services.policy)
    assert completed["__typename"] == "MessageCompleted", completed
    assert completed["message"]["content"] == REPLY
    assert completed["balance"]["balance"] == after.balance
    assert len(begun) == 3, "\n".join(
        " | ".join(b).replace("\n", " ") for b in begun
    )  # the subscription's read, the send, the finish
