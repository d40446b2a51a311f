"""Subscriptions over plain HTTP, for networks that drop websockets: the graphql-sse
protocol, followed by the npm ``graphql-sse`` client in Node.js, and Apollo's multipart
subscriptions, read as Apollo's client reads them. Same authentication, limits and error
masking as the websocket; a stream ends with its completion."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from llm_gateway.settings import Settings
from tests.chat.test_flow import chat_settings
from tests.chat_support import new_dialog, send
from tests.conftest import REQUIRE_SERVICES
from tests.fakes import OpenAIFake, Scenario, fake_openai
from tests.live import LiveServer, live_server
from tests.support import GraphQLClient, token

CLIENTS = Path(__file__).resolve().parents[1] / "clients"
EVENTS = """subscription($dialogId: UUID!) {
  messageEvents(dialogId: $dialogId) {
    __typename
    ... on MessageDelta { messageId seq text }
    ... on MessageCompleted { message { id content } usage { chargedTokens } }
  }
}"""
ANSWER = "One two three four five six seven eight."
SLOW = Scenario(text=ANSWER, chunks=8, chunk_delay=0.05)
MULTIPART_ACCEPT = 'multipart/mixed;subscriptionSpec="1.0",application/json'


@pytest.fixture(scope="session")
def graphql_sse_client() -> Path:
    """The npm graphql-sse client, installed from the lock file once per machine."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        if REQUIRE_SERVICES:
            pytest.fail("Node.js and npm are needed for the JavaScript client tests")
        pytest.skip("Node.js and npm not found")
    installed = CLIENTS / "node_modules" / "graphql-sse" / "package.json"
    if not installed.exists():
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=CLIENTS, check=True
        )
    return CLIENTS / "sse_follow.mjs"


@pytest.fixture
async def openai() -> AsyncIterator[OpenAIFake]:
    async with fake_openai() as fake:
        yield fake


@pytest.fixture
def settings(database_url: str, openai: OpenAIFake) -> Settings:
    return chat_settings(database_url, openai)


@asynccontextmanager
async def live_chat(settings: Settings) -> AsyncIterator[tuple[LiveServer, GraphQLClient]]:
    async with (
        live_server(settings) as server,
        httpx.AsyncClient(base_url=server.base_url, timeout=30) as http,
    ):
        yield server, GraphQLClient(http)


async def subscribers(server: LiveServer) -> float:
    value = server.app.state.services.metrics.registry.get_sample_value(
        "llm_gateway_subscriptions", {"subscription": "messageEvents"}
    )
    return float(value or 0)


async def until_subscribed(server: LiveServer, count: int = 1) -> None:
    async with asyncio.timeout(15):
        # A poll: the gauge signals nothing; it only says the server runs the subscription.
        while await subscribers(server) < count:  # noqa: ASYNC110
            await asyncio.sleep(0.02)


async def follow_with_graphql_sse(
    script: Path, server: LiveServer, bearer: str, dialog_id: str
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        "node",
        str(script),
        server.graphql_url,
        bearer,
        EVENTS,
        json.dumps({"dialogId": dialog_id}),
        "MessageCompleted,MessageFailed",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "NODE_NO_WARNINGS": "1"},
    )


async def lines_of(process: asyncio.subprocess.Process) -> list[dict[str, Any]]:
    async with asyncio.timeout(30):
        out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return [json.loads(line) for line in out.decode().splitlines()]


async def test_the_graphql_sse_client_follows_an_answer_to_its_completion(
    settings: Settings, openai: OpenAIFake, graphql_sse_client: Path
) -> None:
    openai.script(SLOW)
    async with live_chat(settings) as (server, gql):
        dialog_id = await new_dialog(gql, model="gpt-4-turbo")
        node = await follow_with_graphql_sse(graphql_sse_client, server, token(7), dialog_id)
        await until_subscribed(server)
        sent = (await send(gql, dialog_id, "Count to eight")).ok()["sendMessage"]
        lines = await lines_of(node)
    events = [line["result"]["data"]["messageEvents"] for line in lines if "result" in line]
    assert events[0]["__typename"] == "MessageStarted"
    deltas = [e for e in events if e["__typename"] == "MessageDelta"]
    assert "".join(d["text"] for d in deltas) == ANSWER
    assert [d["seq"] for d in deltas] == list(range(1, len(deltas) + 1))
    completed = events[-1]
    assert completed["__typename"] == "MessageCompleted"
    assert completed["message"] == {"id": sent["assistantMessage"]["id"], "content": ANSWER}
    assert completed["usage"]["chargedTokens"] > 0
    assert lines[-1] == {"done": True}


async def test_a_bad_token_gets_a_clear_error_and_the_stream_completes(
    settings: Settings, graphql_sse_client: Path
) -> None:
    async with live_chat(settings) as (server, gql):
        dialog_id = await new_dialog(gql, model="gpt-4-turbo")
        for bearer in ("not-a-token", "-"):
            node = await follow_with_graphql_sse(graphql_sse_client, server, bearer, dialog_id)
            lines = await lines_of(node)
            assert lines[0]["result"]["data"] is None
            assert [e["extensions"]["code"] for e in lines[0]["result"]["errors"]] == [
                "UNAUTHENTICATED"
            ]
            assert lines[1:] == [{"done": True}]  # completed by the server, not hung
        # Someone else's dialog: NOT_FOUND, as over the websocket.
        node = await follow_with_graphql_sse(graphql_sse_client, server, token(8), dialog_id)
        lines = await lines_of(node)
        assert [e["extensions"]["code"] for e in lines[0]["result"]["errors"]] == ["NOT_FOUND"]


def multipart_parts(body: str) -> list[dict[str, Any]]:
    """The JSON parts of a multipart/mixed body with boundary ``graphql``, as Apollo's
    client splits it (what comes before the first boundary is the preamble)."""
    parts = []
    for chunk in body.split("\r\n--graphql")[1:]:
        if chunk.startswith("--"):
            break  # the closing boundary
        _, _, payload = chunk.partition("\r\n\r\n")
        if payload.strip():
            parts.append(json.loads(payload))
    return parts


async def test_an_apollo_multipart_subscription_follows_an_answer(
    settings: Settings, openai: OpenAIFake
) -> None:
    openai.script(SLOW)
    async with live_chat(settings) as (server, gql):
        dialog_id = await new_dialog(gql, model="gpt-4-turbo")
        headers = {"Authorization": f"Bearer {token(7)}", "Accept": MULTIPART_ACCEPT}
        body = {"query": EVENTS, "variables": {"dialogId": dialog_id}}
        received = ""
        async with (
            httpx.AsyncClient(timeout=30) as client,
            client.stream("POST", server.graphql_url, json=body, headers=headers) as r,
        ):
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("multipart/mixed;boundary=graphql")
            await until_subscribed(server)
            await send(gql, dialog_id, "Count to eight")
            async for text in r.aiter_text():
                received += text
                if "MessageCompleted" in received and received.endswith("\r\n--graphql"):
                    break
    payloads = [p["payload"]["data"]["messageEvents"] for p in multipart_parts(received) if p]
    assert payloads[-1]["__typename"] == "MessageCompleted"
    assert payloads[-1]["message"]["content"] == ANSWER
    deltas = [p["text"] for p in payloads if p["__typename"] == "MessageDelta"]
    assert "".join(deltas) == ANSWER


async def test_limits_and_plain_posts_are_answered_as_over_the_websocket(
    settings: Settings,
) -> None:
    async with live_server(settings) as server, httpx.AsyncClient(timeout=30) as client:
        auth = {"Authorization": f"Bearer {token(7)}"}
        sse = {**auth, "Accept": "text/event-stream"}
        # A subscription sent as a plain POST is told where subscriptions are served.
        plain = await client.post(
            server.graphql_url, json={"query": EVENTS, "variables": {"dialogId": "x"}}, headers=auth
        )
        assert plain.status_code == 400
        assert "text/event-stream" in plain.json()["errors"][0]["message"]
        # Too long a document is refused before it is parsed.
        huge = 'subscription { messageEvents(dialogId: "x") { __typename } }' + " " * 200_000
        refused = await client.post(server.graphql_url, json={"query": huge}, headers=sse)
        assert refused.status_code == 413
        assert refused.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"
        # A document that does not validate: its errors as one result, then completion.
        unknown = 'subscription { messageEvents(dialogId: "x") { nope } }'
        response = await client.post(server.graphql_url, json={"query": unknown}, headers=sse)
        events = [block for block in response.text.split("\r\n\r\n") if block]
        assert events[0].startswith("event: next\r\ndata: ")
        first = json.loads(events[0].split("data: ", 1)[1])
        assert first["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
        assert events[-1].startswith("event: complete")
