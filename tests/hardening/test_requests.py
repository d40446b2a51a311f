"""Hostile and malformed requests: refused cleanly as the client's mistake, never a 500.

HTTP answers 400 (413 for a body over MAX_REQUEST_BYTES) with GraphQL-shaped errors; the
websocket closes with 4400 on a message the protocol does not define (1009 past
MAX_WEBSOCKET_MESSAGE_BYTES); anonymous introspection is refused with DEBUG off.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from websockets.asyncio.client import connect

from llm_gateway.app import create_app
from llm_gateway.settings import Settings
from tests.conftest import make_settings
from tests.live import (
    GRAPHQL_TRANSPORT_WS,
    GraphQLSocket,
    LiveServer,
    SocketClosed,
    graphql_socket,
    live_server,
    serve_asgi,
)
from tests.support import GraphQLClient, Result, token

LIMIT = 1_048_576  # the default MAX_REQUEST_BYTES and MAX_WEBSOCKET_MESSAGE_BYTES
TYPENAME = json.dumps({"query": "{ __typename }"}).encode()
AUTH = {"Authorization": f"Bearer {token(7)}"}
APP_REFUSAL = "Message too big"  # the reason the app closes with; uvicorn words its own
SQLITE_ONLY = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


async def post(http: httpx.AsyncClient, body: Any, **headers: str) -> Result:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = await http.post(
        "/graphql", content=content, headers={"content-type": "application/json", **headers}
    )
    return Result(response.status_code, response.json())


def refused(result: Result, status: int, code: str) -> str:
    """The one error's message, once the answer is a GraphQL-shaped refusal."""
    assert (result.status, result.codes) == (status, [code]), result
    assert set(result.body) == {"errors"}
    message: str = result.errors[0]["message"]
    return message


# --- HTTP: malformed requests ------------------------------------------------------------


async def test_a_body_that_is_no_graphql_request_is_a_bad_request(
    http: httpx.AsyncClient,
) -> None:
    for body in (
        b"null",
        b'"{ __typename }"',
        b"42",
        b"true",
        b"\xff\xfe{}",  # not UTF-8
        '{"query": "{ __typename \xff }"}'.encode("latin-1"),
        b'{"query": 42}',
        b'{"query": "{ __typename }", "variables": [1]}',
        b'{"query": "{ __typename }", "variables": {"title": "\\ud83d"}}',  # half a pair
        b'{"query": ',
        b"{}",
        b"[1, 2]",
    ):
        result = await post(http, body)
        assert (result.status, result.codes) == (400, ["BAD_REQUEST"]), (body, result)

    text = await http.post(
        "/graphql", content=b"{ __typename }", headers={"content-type": "text/plain"}
    )
    assert (text.status_code, text.json()["errors"][0]["extensions"]) == (
        400,
        {"code": "BAD_REQUEST"},
    )
    assert (await http.get("/healthz")).status_code == 200


async def test_an_escaped_surrogate_pair_is_text(http: httpx.AsyncClient) -> None:
    mutation = "mutation($t: String) { createDialog(input: {title: $t}) { title } }"
    body = json.dumps({"query": mutation, "variables": {"t": "\U0001f600"}}).encode()
    assert b"\\ud83d\\ude00" in body  # json.dumps escapes it as a pair
    created = await post(http, body, **AUTH)
    assert created.ok() == {"createDialog": {"title": "\U0001f600"}}


async def test_a_subscription_over_http_is_sent_to_the_websocket(http: httpx.AsyncClient) -> None:
    result = await post(http, {"query": "subscription { balanceChanged { reason } }"}, **AUTH)
    assert "websocket" in refused(result, 400, "BAD_REQUEST")


async def test_several_operations_need_an_operation_name(http: httpx.AsyncClient) -> None:
    document = "query First { __typename } query Second { me { userId } }"

    unnamed = await post(http, {"query": document}, **AUTH)
    assert "operationName" in refused(unnamed, 400, "GRAPHQL_VALIDATION_FAILED")

    unknown = await post(http, {"query": document, "operationName": "Third"}, **AUTH)
    assert "Third" in refused(unknown, 400, "GRAPHQL_VALIDATION_FAILED")

    named = await post(http, {"query": document, "operationName": "Second"}, **AUTH)
    assert named.ok() == {"me": {"userId": 7}}


# --- HTTP: the body limit ----------------------------------------------------------------


def padded(size: int) -> bytes:
    """A ``{ __typename }`` request of exactly ``size`` bytes (JSON allows the spaces)."""
    return TYPENAME + b" " * (size - len(TYPENAME))


async def chunks(body: bytes, sent: list[int], size: int = 65_536) -> AsyncIterator[bytes]:
    """``body`` without a Content-Length (chunked), recording how much was taken."""
    for start in range(0, len(body), size):
        sent.append(len(body[start : start + size]))
        yield body[start : start + size]


def too_large(response: httpx.Response) -> None:
    assert response.status_code == 413
    assert response.headers["connection"] == "close"
    assert response.headers["x-request-id"]
    [error] = response.json()["errors"]
    assert error["extensions"] == {"code": "PAYLOAD_TOO_LARGE", "maximum": LIMIT}
    assert error["message"].startswith("Request body too large")


async def test_a_body_over_the_limit_is_refused_before_it_is_parsed(
    http: httpx.AsyncClient, settings: Settings
) -> None:
    assert settings.max_request_bytes == LIMIT
    json_body = {"content-type": "application/json"}
    too_large(await http.post("/graphql", content=padded(LIMIT + 1), headers=json_body))

    sent: list[int] = []
    big = padded(4 * LIMIT)
    too_large(await http.post("/graphql", content=chunks(big, sent), headers=json_body))
    assert LIMIT < sum(sent) <= LIMIT + 65_536 < len(big)  # reading stopped at the limit

    form = {"content-type": "application/x-www-form-urlencoded"}
    for admin_form in (b"a=" * LIMIT, chunks(b"a=" * LIMIT, [])):
        too_large(await http.post("/admin/login", content=admin_form, headers=form))

    assert (await http.get("/healthz")).json() == {"status": "alive"}


async def test_a_body_at_the_limit_goes_through(http: httpx.AsyncClient) -> None:
    for content in (padded(LIMIT), chunks(padded(LIMIT), [])):
        response = await http.post(
            "/graphql", content=content, headers={"content-type": "application/json"}
        )
        assert (response.status_code, response.json()) == (200, {"data": {"__typename": "Query"}})


@SQLITE_ONLY
async def test_a_declared_length_over_the_limit_is_refused_without_reading(
    settings: Settings,
) -> None:
    """Under uvicorn: only the headers are sent, the 413 comes anyway and the server lives."""
    async with live_server(settings) as server:
        reader, writer = await asyncio.open_connection(server.host, server.port)
        writer.write(
            b"POST /graphql HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
            b"Content-Length: 52428800\r\n\r\n"
        )
        await writer.drain()
        async with asyncio.timeout(10):
            answer = await reader.read()  # until the server closes the connection
        writer.close()
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 413 ")
        assert json.loads(body)["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"
        async with httpx.AsyncClient(base_url=server.base_url) as client:
            assert (await client.get("/healthz")).status_code == 200


# --- introspection -------------------------------------------------------------------------

SCHEMA = "{ __schema { queryType { name } } }"
TYPE = '{ __type(name: "Query") { name } }'
IN_A_FRAGMENT = "query { ...Map } fragment Map on Query { __schema { types { name } } }"


@asynccontextmanager
async def client_for(settings: Settings) -> AsyncIterator[GraphQLClient]:
    async with LifespanManager(create_app(settings)) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as http:
            yield GraphQLClient(http)


async def test_anonymous_introspection_is_refused_by_default(gql: GraphQLClient) -> None:
    for query in (SCHEMA, TYPE, IN_A_FRAGMENT):
        for auth in (None, "Bearer not-a-token"):
            result = await gql(query, user=None, auth=auth)
            assert (result.status, result.data, result.codes) == (200, None, ["UNAUTHENTICATED"])
            assert "Introspection" in result.errors[0]["message"]
    assert (await gql("{ __typename }", user=None)).ok() == {"__typename": "Query"}


async def test_a_token_lets_anyone_introspect(gql: GraphQLClient) -> None:
    assert (await gql(SCHEMA)).ok() == {"__schema": {"queryType": {"name": "Query"}}}
    assert (await gql(TYPE, staff=True)).ok() == {"__type": {"name": "Query"}}
    assert (await gql(IN_A_FRAGMENT)).ok()["__schema"]["types"]


async def test_introspection_all_and_off(database_url: str) -> None:
    async with client_for(make_settings(database_url, graphql_introspection="all")) as gql:
        assert (await gql(SCHEMA, user=None)).ok()["__schema"]["queryType"]["name"] == "Query"
    async with client_for(make_settings(database_url, graphql_introspection="off")) as gql:
        assert (await gql(SCHEMA, staff=True)).codes == ["FORBIDDEN"]
        assert (await gql("{ __typename }", user=None)).ok() == {"__typename": "Query"}


def test_introspection_follows_debug_unless_set() -> None:
    def mode(**values: Any) -> str:
        return make_settings("sqlite+aiosqlite:///:memory:", **values).introspection

    assert (mode(), mode(debug=True)) == ("authenticated", "all")
    assert mode(debug=True, graphql_introspection=" Authenticated ") == "authenticated"
    assert mode(graphql_introspection="") == "authenticated"
    with pytest.raises(ValueError, match="graphql_introspection"):
        mode(graphql_introspection="sometimes")


# --- the websocket -------------------------------------------------------------------------


@asynccontextmanager
async def raw_socket(server: LiveServer) -> AsyncIterator[GraphQLSocket]:
    """An acknowledged socket whose messages the test writes itself."""
    async with connect(
        server.graphql_ws_url, subprotocols=[GRAPHQL_TRANSPORT_WS], open_timeout=10
    ) as connection:
        client = GraphQLSocket(connection)
        await client.init(AUTH)
        yield client


MALFORMED_MESSAGES = (
    "[1,2]",
    "null",
    '"ping"',
    "42",
    '{"type": 7}',
    '{"id": "1", "type": "subscribe", "payload": "{ __typename }"}',
    '{"id": "1", "type": "subscribe", "payload": {"query": 42}}',
    '{"id": "1", "type": "subscribe", "payload": {"query": "{ __typename }", "variables": [1]}}',
    '{"id": "1", "type": "subscribe", "payload": {"query": "{ __typename }", "operationName": 1}}',
    '{"id": [1], "type": "subscribe", "payload": {"query": "{ __typename }"}}',
    '{"id": "1", "type": "subscribe", "payload": {"query": "{ __typename \\udc00 }"}}',
    '{"type": "complete"}',
)
UNIDENTIFIED_OPERATIONS = (
    {"query": "query A { __typename } query B { __typename }"},
    {"query": "{ __typename }", "operationName": "Missing"},
)


@SQLITE_ONLY
async def test_a_malformed_message_closes_the_socket_with_4400(settings: Settings) -> None:
    async with live_server(settings) as server:
        for raw in MALFORMED_MESSAGES:
            async with raw_socket(server) as socket:
                await socket.connection.send(raw)
                assert await socket.expect_close() == 4400, raw
        for payload in UNIDENTIFIED_OPERATIONS:
            async with raw_socket(server) as socket:
                await socket.send({"id": "1", "type": "subscribe", "payload": payload})
                assert await socket.expect_close() == 4400, payload
        async with graphql_socket(server, AUTH) as socket:  # the server is none the worse
            assert await socket.execute("{ __typename }") == {"data": {"__typename": "Query"}}


def subscribe_of_size(size: int) -> str:
    # Padded in the variables: the document itself has a (smaller) character limit.
    payload = {"query": "{ __typename }", "variables": {"pad": ""}}
    message = json.dumps({"id": "1", "type": "subscribe", "payload": payload})
    return message.replace('"pad": ""', '"pad": "' + " " * (size - len(message)) + '"')


async def closed_past_the_limit(server: LiveServer) -> str:
    """A message at the limit is served, one byte more closes with 1009: the reason."""
    async with raw_socket(server) as socket:
        await socket.connection.send(subscribe_of_size(LIMIT))
        assert await socket.receive() == {
            "id": "1",
            "type": "next",
            "payload": {"data": {"__typename": "Query"}},
        }
        assert (await socket.receive())["type"] == "complete"
        await socket.connection.send(subscribe_of_size(LIMIT + 1).replace('"1"', '"2"', 1))
        with pytest.raises(SocketClosed) as closed:
            await socket.receive()
        assert closed.value.code == 1009
        return closed.value.reason


@SQLITE_ONLY
async def test_a_websocket_message_over_the_limit_closes_with_1009(settings: Settings) -> None:
    assert settings.max_websocket_message_bytes == LIMIT
    async with live_server(settings) as server:  # as `serve` runs it: uvicorn refuses it
        assert await closed_past_the_limit(server) != APP_REFUSAL
    async with serve_asgi(create_app(settings)) as server:  # uvicorn would take 16 MiB
        assert await closed_past_the_limit(server) == APP_REFUSAL
