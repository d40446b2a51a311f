"""Faults lose nothing: Redis dying, a gateway crash, PostgreSQL dropping connections, and
shutdown with Redis down. After each, the answer is in an honest final state, the ledger is
exact and nothing stays held or streaming.

These run on PostgreSQL, the production path; each kills only what it started itself.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text

from llm_gateway.db.engine import Database, make_engine
from llm_gateway.db.models import Message
from tests.chat.test_flow import EVENTS, chat_settings
from tests.chat_support import assert_exact, assert_exact_in, finished
from tests.fakes import DEFAULT_OPENAI_KEY, OpenAIFake, Scenario, fake_openai
from tests.faults import gateway, redis_server, until
from tests.live import GraphQLSocket, LiveServer, graphql_socket, live_server
from tests.support import token

pytestmark = pytest.mark.postgres_only

AUTH = {"Authorization": f"Bearer {token(7)}"}
REPLY = "".join(f"w{i} " for i in range(40))
SEND = (
    "mutation($input: SendMessageInput!) { sendMessage(input: $input) { assistantMessage { id } } }"
)


@pytest.fixture
async def openai() -> AsyncIterator[OpenAIFake]:
    async with fake_openai() as fake:
        yield fake


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """The test's own view of the database the gateway under test uses."""
    database = Database(make_engine(database_url, pool_size=2, max_overflow=0))
    yield database
    await database.dispose()


async def graphql(server: LiveServer, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client:
        response = await client.post(
            "/graphql", json={"query": query, "variables": variables}, headers=AUTH
        )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def new_dialog(server: LiveServer) -> str:
    body = await graphql(
        server, 'mutation { createDialog(input: {model: "gpt-4-turbo"}) { id } }', {}
    )
    dialog_id: str = body["data"]["createDialog"]["id"]
    return dialog_id


async def send(server: LiveServer, dialog_id: str) -> dict[str, Any]:
    return await graphql(server, SEND, {"input": {"dialogId": dialog_id, "content": "Count"}})


def sent_id(body: dict[str, Any]) -> str:
    assert "errors" not in body, body
    message_id: str = body["data"]["sendMessage"]["assistantMessage"]["id"]
    return message_id


def codes(body: dict[str, Any]) -> list[str]:
    return [e.get("extensions", {}).get("code") for e in body.get("errors") or []]


async def results(socket: GraphQLSocket, operation_id: str) -> list[dict[str, Any]]:
    """Every ``next`` payload of an operation until it completes (errors included)."""
    return [payload async for payload in socket.events(operation_id)]


def kinds(payloads: list[dict[str, Any]]) -> list[str]:
    return [
        (p.get("data") or {}).get("messageEvents", {}).get("__typename")
        if p.get("data")
        else codes(p)[0]
        for p in payloads
    ]


async def message_row(db: Database, message_id: str) -> Message:
    async with db.read() as session:
        row = await session.get(Message, uuid.UUID(message_id))
    assert row is not None
    return row


async def streaming_count(db: Database) -> int:
    async with db.read() as session:
        count = await session.scalar(
            select(func.count()).select_from(Message).where(Message.status == "streaming")
        )
    return int(count or 0)


async def test_redis_dying_mid_stream_loses_nothing_and_the_broker_comes_back(
    database_url: str, openai: OpenAIFake, tmp_path: Path
) -> None:
    openai.script(
        Scenario(text=REPLY, chunks=40, chunk_delay=0.03),
        Scenario(text="Back again.", chunks=2),
    )
    async with redis_server(tmp_path / "redis") as redis:
        settings = chat_settings(database_url, openai, redis_url=redis.url)
        async with live_server(settings) as server, graphql_socket(server, AUTH) as socket:
            dialog_id = await new_dialog(server)
            operation = await socket.subscribe(EVENTS, {"dialogId": dialog_id})
            message_id = sent_id(await send(server, dialog_id))
            events = socket.events(operation)
            seen = [await anext(events), await anext(events)]  # started, a first delta
            assert kinds(seen) == ["MessageStarted", "MessageDelta"]

            await redis.kill()
            seen = [payload async for payload in events]
            # The answer still ends for this subscriber, from what the database stored;
            # then the subscription reports that live delivery is gone.
            assert kinds(seen)[-2:] == ["MessageCompleted", "SERVICE_UNAVAILABLE"]
            completed = seen[-2]["data"]["messageEvents"]["message"]
            assert (completed["status"], completed["content"]) == ("COMPLETE", REPLY)
            app = server.app
            await assert_exact(app)

            # While Redis is down: a send is refused before anything is saved or held,
            # and a new subscription gets a clean error.
            refused = await send(server, dialog_id)
            assert codes(refused) == ["SERVICE_UNAVAILABLE"]
            down = await results(socket, await socket.subscribe(EVENTS, {"dialogId": dialog_id}))
            assert [codes(p) for p in down] == [["SERVICE_UNAVAILABLE"]]
            async with app.state.services.db.read() as session:
                count = await session.scalar(select(func.count()).select_from(Message))
            assert count == 2  # the question and the answer of the first send only
            await assert_exact(app)

            # Redis returns: the broker reconnects by itself and chats stream again.
            await redis.start()

            async def accepted() -> bool:
                return codes(await graphql(server, "{ me { userId } }", {})) == [] and (
                    app.state.services.broker.available
                )

            await until(accepted, what="the broker reconnected")
            operation = await socket.subscribe(EVENTS, {"dialogId": dialog_id})
            again = sent_id(await send(server, dialog_id))
            live = []
            async for payload in socket.events(operation):
                live.append(payload)
                if kinds([payload]) == ["MessageCompleted"]:
                    break
            assert kinds(live)[0] == "MessageStarted"
            assert (await finished(app, again)).content == "Back again."
            assert (await finished(app, message_id)).status == "complete"
            await assert_exact(app)


async def test_shutdown_finishes_with_redis_down_and_interrupts_the_answer(
    database_url: str, openai: OpenAIFake, db: Database, tmp_path: Path
) -> None:
    openai.script(Scenario(text=REPLY, chunks=40, chunk_delay=0.5))
    async with (
        redis_server(tmp_path / "redis") as redis,
        gateway(
            tmp_path / "gateway",
            DATABASE_URL=database_url,
            REDIS_URL=redis.url,
            OPENAI_API_KEY=DEFAULT_OPENAI_KEY,
            OPENAI_BASE_URL=openai.base_url,
            GENERATION_FLUSH_SECONDS="0.05",
            SHUTDOWN_GRACE_SECONDS="1",
        ) as process,
    ):
        server = await process.start()
        dialog_id = await new_dialog(server)
        message_id = sent_id(await send(server, dialog_id))

        async def streaming_text() -> bool:
            return bool((await message_row(db, message_id)).content)

        await until(streaming_text, what="the answer started")
        await redis.kill()
        code = await process.terminate(within=1 + 8)
    assert code in (0, -15), process.output()
    answer = await message_row(db, message_id)
    assert answer.status == "interrupted"
    assert answer.content
    assert REPLY.startswith(answer.content)
    assert answer.charged_tokens
    assert answer.charged_tokens > 0
    await assert_exact_in(db)
    assert await streaming_count(db) == 0


async def test_a_crashed_gateway_s_answers_are_recovered_and_subscribers_see_the_end(
    database_url: str, openai: OpenAIFake, db: Database, tmp_path: Path
) -> None:
    """Instance A runs the answer and is killed; instance B's subscribers, one following
    since before the crash and one joining after it, both see it end as recovered."""
    openai.script(Scenario(text=REPLY, chunks=40, chunk_delay=0.5))
    lease = 6
    async with (
        redis_server(tmp_path / "redis") as redis,
        gateway(
            tmp_path / "gateway",
            DATABASE_URL=database_url,
            REDIS_URL=redis.url,
            OPENAI_API_KEY=DEFAULT_OPENAI_KEY,
            OPENAI_BASE_URL=openai.base_url,
            GENERATION_FLUSH_SECONDS="0.05",
            RESERVATION_LEASE_SECONDS=str(lease),
        ) as process,
    ):
        a = await process.start()
        settings_b = chat_settings(
            database_url,
            openai,
            redis_url=redis.url,
            reservation_lease_seconds=lease,
            sweep_interval_seconds=0.5,
        )
        async with live_server(settings_b) as b, graphql_socket(b, AUTH) as early:
            dialog_id = await new_dialog(a)
            following = early.events(await early.subscribe(EVENTS, {"dialogId": dialog_id}))
            message_id = sent_id(await send(a, dialog_id))
            before = [await anext(following), await anext(following)]
            assert kinds(before) == ["MessageStarted", "MessageDelta"]

            async def streaming_text() -> bool:
                return bool((await message_row(db, message_id)).content)

            await until(streaming_text, what="some text was saved")
            await process.kill()
            assert (await message_row(db, message_id)).status == "streaming"
            async with graphql_socket(b, AUTH) as late:
                joined = late.events(await late.subscribe(EVENTS, {"dialogId": dialog_id}))
                # The saved text first (its owner cannot answer), then the recovered end.
                seen = [await anext(joined), await anext(joined)]
            assert kinds(seen) == ["MessageDelta", "MessageFailed"], seen
            saved = seen[0]["data"]["messageEvents"]["text"]
            failed = seen[1]["data"]["messageEvents"]
            rest = []
            async for payload in following:
                rest.append(payload)
                if kinds([payload]) != ["MessageDelta"]:
                    break
            assert kinds(rest)[-1] == "MessageFailed"
            assert rest[-1]["data"]["messageEvents"] == failed

        assert failed["code"] == "INTERRUPTED"
        answer = await message_row(db, message_id)
        assert answer.status == "interrupted"
        assert failed["final"]["content"] == answer.content
        assert saved
        assert answer.content.startswith(saved)
        assert answer.charged_tokens
        assert answer.charged_tokens > 0
        await assert_exact_in(db)
        assert await streaming_count(db) == 0

        await process.start()  # the crashed instance comes back and finds nothing to redo
        assert await process.terminate(within=15) in (0, -15)
        assert (await message_row(db, message_id)).completed_at == answer.completed_at
        await assert_exact_in(db)


async def test_a_live_answer_is_never_taken_for_an_orphan(
    database_url: str, openai: OpenAIFake
) -> None:
    """The first token comes later than the lease lasts: the heartbeat keeps it alive
    while this very instance's sweeper runs every half second."""
    openai.script(Scenario(text="Slow to start.", chunks=2, first_byte_delay=4.0))
    settings = chat_settings(
        database_url,
        openai,
        reservation_lease_seconds=3,
        sweep_interval_seconds=0.5,
        provider_first_token_timeout=10,
        provider_idle_timeout=10,
    )
    async with live_server(settings) as server:
        dialog_id = await new_dialog(server)
        message_id = sent_id(await send(server, dialog_id))
        answer = await finished(server.app, message_id)
        assert (answer.status, answer.content) == ("complete", "Slow to start.")
        await assert_exact(server.app)


async def test_postgres_dropping_connections_mid_stream_loses_nothing(
    database_url: str, openai: OpenAIFake, db: Database
) -> None:
    openai.script(Scenario(text=REPLY, chunks=40, chunk_delay=0.03))
    settings = chat_settings(database_url, openai)
    async with live_server(settings) as server, graphql_socket(server, AUTH) as socket:
        dialog_id = await new_dialog(server)
        operation = await socket.subscribe(EVENTS, {"dialogId": dialog_id})
        message_id = sent_id(await send(server, dialog_id))
        events = socket.events(operation)
        assert kinds([await anext(events), await anext(events)]) == [
            "MessageStarted",
            "MessageDelta",
        ]
        async with db.read() as session:  # every backend of this database but our own
            ended = await session.scalar(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
        assert ended
        assert ended > 0
        rest = []
        async for payload in events:
            rest.append(payload)
            if kinds([payload]) == ["MessageCompleted"]:
                break
        assert kinds(rest)[-1] == "MessageCompleted"
        answer = await finished(server.app, message_id)
        assert (answer.status, answer.content) == ("complete", REPLY)
        await assert_exact(server.app)
