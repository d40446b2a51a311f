"""``/v1`` on the money path, on PostgreSQL: racing requests never overdraw, a repeated
``Idempotency-Key`` is answered once and charged once, a client that leaves mid-stream is
charged for what was produced, a crashed request's hold comes back, a revoked key is
refused by a second instance at once, and no raw key is stored anywhere."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any

import asyncpg
import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam
from sqlalchemy import select, text, update
from sqlalchemy.engine import make_url

from llm_gateway.db.engine import Database, make_engine
from llm_gateway.db.models import ApiRequest, Balance, Reservation
from llm_gateway.services.chat.generation.recovery import sweep_once
from llm_gateway.services.money.balances import ensure_account
from llm_gateway.settings import Settings
from tests.api_support import Upstreams, api_requests, api_settings, new_key, sdk
from tests.chat_support import assert_exact, assert_exact_in, money
from tests.factories import database_of
from tests.fakes import Scenario
from tests.live import LiveServer, live_server
from tests.support import token

pytestmark = pytest.mark.postgres_only

HELLO: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Hello"}]


@pytest.fixture
def settings(database_url: str, fakes: Upstreams) -> Settings:
    return api_settings(database_url, fakes, rate_limit_requests=0)  # 50 requests at once


async def _set_balance(app: Any, amount: int, user: int = 7) -> None:
    async with database_of(app).transaction() as session:
        await ensure_account(session, user, app.state.services.policy)
        await session.execute(update(Balance).where(Balance.user_id == user).values(balance=amount))
        # Keep balance == sum(ledger): the grant row becomes this balance.
        await session.execute(
            text(
                "UPDATE token_transactions SET amount = :a, balance_after = :a "
                "WHERE user_id = :u AND kind = 'grant'"
            ),
            {"a": amount, "u": user},
        )


async def test_fifty_concurrent_requests_on_a_small_balance_never_overdraw(
    server: LiveServer, fakes: Upstreams
) -> None:
    # Each answer costs 11 + 7 = 18 tokens; the hold is 11-ish + the cap of 20.
    fakes.openai.default = Scenario(
        chunks=2, chunk_delay=0.02, prompt_tokens=11, completion_tokens=7
    )
    await _set_balance(server.app, 300)
    key = await new_key(server.app)
    async with sdk(server, key, max_retries=0) as client:

        async def one(index: int) -> str:
            try:
                stream = index % 2 == 0
                if stream:
                    chunks = await client.chat.completions.create(
                        model="gpt-4-turbo", messages=HELLO, max_tokens=20, stream=True
                    )
                    async for _ in chunks:
                        pass
                else:
                    await client.chat.completions.create(
                        model="gpt-4-turbo", messages=HELLO, max_tokens=20
                    )
            except openai.APIStatusError as exc:
                return str(exc.status_code)
            return "ok"

        outcomes = await asyncio.gather(*(one(i) for i in range(50)))
    served = outcomes.count("ok")
    assert set(outcomes) <= {"ok", "402"}
    assert 0 < served < 50
    state = await assert_exact(server.app)
    assert state.balance == 300 - 18 * served
    records = await api_requests(server.app)
    assert sum(r.charged_tokens or 0 for r in records) == 300 - state.balance
    assert len(records) == 50


async def test_a_repeated_idempotency_key_is_answered_once_and_charged_once(
    server: LiveServer, fakes: Upstreams
) -> None:
    fakes.openai.script(Scenario(text="Only once.", prompt_tokens=10, completion_tokens=3))
    key = await new_key(server.app)
    async with sdk(server, key) as client:
        first = await client.chat.completions.create(
            model="gpt-4-turbo", messages=HELLO, extra_headers={"Idempotency-Key": "order-1"}
        )
        again = await client.chat.completions.create(
            model="gpt-4-turbo", messages=HELLO, extra_headers={"Idempotency-Key": "order-1"}
        )
        replayed: list[str] = []
        chunks = await client.chat.completions.create(
            model="gpt-4-turbo",
            messages=HELLO,
            stream=True,
            extra_headers={"Idempotency-Key": "order-2"},
        )
        async for chunk in chunks:
            replayed.extend(c.delta.content or "" for c in chunk.choices)
        streamed_again: list[str] = []
        chunks = await client.chat.completions.create(
            model="gpt-4-turbo",
            messages=HELLO,
            stream=True,
            extra_headers={"Idempotency-Key": "order-2"},
        )
        async for chunk in chunks:
            streamed_again.extend(c.delta.content or "" for c in chunk.choices)
        with pytest.raises(openai.ConflictError) as reused:
            await client.chat.completions.create(
                model="gpt-4-turbo",
                messages=[{"role": "user", "content": "Something else"}],
                extra_headers={"Idempotency-Key": "order-1"},
            )
    assert again.model_dump() == first.model_dump()
    assert "".join(streamed_again) == "".join(replayed) != ""
    assert reused.value.code == "idempotency_key_reused"
    assert reused.value.response.headers["x-should-retry"] == "false"
    assert len(fakes.openai.chat_requests) == 2  # one per key
    records = await api_requests(server.app)
    assert len(records) == 2
    state = await assert_exact(server.app)
    assert state.balance == 10_000 - sum(r.charged_tokens or 0 for r in records)


async def test_a_client_that_leaves_mid_stream_is_charged_for_what_was_produced(
    server: LiveServer, fakes: Upstreams
) -> None:
    fakes.openai.script(Scenario(text="word " * 40, chunks=40, chunk_delay=0.05, usage=False))
    key = await new_key(server.app)
    async with (
        httpx.AsyncClient(base_url=server.base_url) as http,
        http.stream(
            "POST",
            "/v1/chat/completions",
            headers={"Authorization": f"Bearer {key}"},
            json={"model": "gpt-4-turbo", "messages": HELLO, "stream": True},
        ) as response,
    ):
        seen = 0
        async for line in response.aiter_lines():
            seen += line.startswith("data: {")
            if seen >= 5:
                break  # the client hangs up
    for _ in range(100):
        (record,) = await api_requests(server.app)
        if record.status != "streaming":
            break
        await asyncio.sleep(0.05)
    assert (record.status, record.error_code) == ("cancelled", "CLIENT_DISCONNECTED")
    assert record.completion_tokens
    assert record.completion_tokens < 40
    assert record.charged_tokens == (record.prompt_tokens or 0) + record.completion_tokens
    await fakes.openai.wait_for_disconnect()  # the upstream call was stopped too
    await assert_exact(server.app)


async def test_a_crashed_requests_hold_is_released_and_the_record_ends(
    database_url: str, fakes: Upstreams
) -> None:
    # A request whose process died: held, recorded as streaming, its lease lapsed.
    fakes.openai.script(Scenario(chunks=20, chunk_delay=0.2))
    settings = api_settings(database_url, fakes)
    async with live_server(settings) as server:
        key = await new_key(server.app)
        async with (
            httpx.AsyncClient(base_url=server.base_url) as http,
            http.stream(
                "POST",
                "/v1/chat/completions",
                headers={"Authorization": f"Bearer {key}"},
                json={"model": "gpt-4-turbo", "messages": HELLO, "stream": True},
            ) as response,
        ):
            lines = response.aiter_lines()  # kept: a dropped iterator would hang up
            while not (await anext(lines)).startswith("data: {"):
                pass
            db = database_of(server.app)
            broker = server.app.state.services.broker
            # Simulate the crash: no heartbeat renews the hold any more, and its lease
            # lapses while the answer still streams.
            server.app.state.services.generations._kept.clear()
            async with db.transaction() as session:
                await session.execute(
                    update(Reservation).values(
                        expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
                    )
                )
            assert await sweep_once(db, broker, server.app.state.services.metrics) == 1
        (record,) = await api_requests(server.app)
        assert (record.status, record.error_code) == ("interrupted", "INTERRUPTED")
        state = await money(server.app)
        assert state.reserved == 0
        assert state.balance == state.ledger_sum


async def test_a_revoked_key_is_refused_by_another_instance_within_a_second(
    database_url: str, fakes: Upstreams, redis_available: str
) -> None:
    settings = api_settings(
        database_url, fakes, redis_url=redis_available, api_key_cache_seconds=3600
    )
    async with live_server(settings) as one, live_server(settings) as two:
        key = await new_key(one.app)
        async with sdk(two, key) as client:
            await client.chat.completions.create(model="mock", messages=HELLO)  # cached on two
        async with httpx.AsyncClient(base_url=one.base_url) as http:
            listed = await http.post(
                "/graphql",
                headers={"Authorization": f"Bearer {token(7)}"},
                json={"query": "{ apiKeys { id } }"},
            )
            key_id = listed.json()["data"]["apiKeys"][0]["id"]
            revoked = await http.post(
                "/graphql",
                headers={"Authorization": f"Bearer {token(7)}"},
                json={
                    "query": "mutation($id: UUID!) { revokeApiKey(input: {id: $id}) { id } }",
                    "variables": {"id": key_id},
                },
            )
            assert "errors" not in revoked.json(), revoked.text
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 1.0
        async with sdk(two, key, max_retries=0) as client:
            while True:
                try:
                    await client.chat.completions.create(model="mock", messages=HELLO)
                except openai.AuthenticationError:
                    break
                assert loop.time() < deadline, "the revocation did not reach the other instance"
                await asyncio.sleep(0.05)


async def test_the_raw_key_is_nowhere_in_a_dump_of_the_database(
    server: LiveServer, settings: Settings
) -> None:
    key = await new_key(server.app, name="dump check")
    async with sdk(server, key) as client:
        await client.chat.completions.create(
            model="mock", messages=HELLO, extra_headers={"Idempotency-Key": "dump"}
        )
    url = make_url(str(settings.database)).set(drivername="postgresql")
    connection = await asyncpg.connect(url.render_as_string(hide_password=False))
    try:
        tables = await connection.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        )
        dump: list[str] = []
        for (table,) in tables:
            rows = await connection.fetch(f'SELECT row_to_json(t)::text FROM "{table}" t')
            dump.extend(row[0] for row in rows)
    finally:
        await connection.close()
    everything = "\n".join(dump)
    assert "dump check" in everything  # the dump does include the key's row
    secret = key.removeprefix("sk-lg-")
    assert secret not in everything
    assert secret[:16] not in everything
    assert secret[-16:] not in everything
    assert json.dumps(key) not in everything


async def test_a_stream_open_at_shutdown_ends_interrupted_and_charged_for_its_output(
    database_url: str, fakes: Upstreams
) -> None:
    fakes.openai.script(Scenario(text="word " * 60, chunks=60, chunk_delay=0.25, usage=False))
    settings = api_settings(database_url, fakes)
    seen = 0
    async with live_server(settings) as server:
        key = await new_key(server.app)
        client = httpx.AsyncClient(base_url=server.base_url, timeout=30)
        request = client.build_request(
            "POST",
            "/v1/chat/completions",
            headers={"Authorization": f"Bearer {key}"},
            json={"model": "gpt-4-turbo", "messages": HELLO, "stream": True},
        )
        response = await client.send(request, stream=True)
        lines = response.aiter_lines()
        while seen < 3:
            seen += (await anext(lines)).startswith("data: {")
        # Leaving the block stops the server while the answer still streams: it gets the
        # graceful period, then the stream is ended.
    body = [line async for line in lines]
    await response.aclose()
    await client.aclose()
    assert "data: [DONE]" not in body
    errors = [json.loads(line.removeprefix("data: ")) for line in body if '"error"' in line]
    assert [e["error"]["code"] for e in errors] == ["interrupted"]
    engine = make_engine(database_url)
    try:
        db = Database(engine)
        async with db.read() as session:
            (record,) = (await session.scalars(select(ApiRequest))).all()
        assert (record.status, record.error_code) == ("interrupted", "INTERRUPTED")
        assert record.completion_tokens
        assert record.completion_tokens < 60
        assert record.charged_tokens == (record.prompt_tokens or 0) + record.completion_tokens
        await assert_exact_in(db)
    finally:
        await engine.dispose()
