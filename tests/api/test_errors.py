"""Every error of ``/v1`` in OpenAI's envelope, mapped by the official SDK to its exception
classes; those a retry cannot fix say so, and the SDK (default retries) does not retry them."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam
from sqlalchemy import update

from llm_gateway.db.models import Balance
from llm_gateway.services.money import api_keys
from tests.api_support import Upstreams, api_requests, api_settings, new_key, sdk
from tests.chat_support import assert_exact
from tests.factories import database_of
from tests.fakes import Scenario
from tests.live import LiveServer, live_server
from tests.support import token

HELLO: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Hello"}]

# The mapping of errors does not depend on the database: PostgreSQL, the production path.
pytestmark = pytest.mark.postgres_only


async def _post(server: LiveServer, key: str | None, body: object) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        return await http.post("/v1/chat/completions", headers=headers, json=body)


@pytest.mark.parametrize(
    "presented", [None, "sk-lg-unknownunknownunknownunknownunknownunkno", "garbage"]
)
async def test_a_missing_or_unknown_key_is_401_invalid_api_key(
    server: LiveServer, presented: str | None
) -> None:
    response = await _post(server, presented, {"model": "gpt-4-turbo", "messages": HELLO})
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == "invalid_api_key"
    assert set(error) == {"message", "type", "param", "code"}


async def test_a_revoked_or_expired_key_is_refused_by_the_sdk(server: LiveServer) -> None:
    key = await new_key(server.app)
    async with database_of(server.app).transaction() as session:
        (row,) = await api_keys.list_api_keys(session, 7)
        await api_keys.revoke_api_key(session, row.id, user_id=7)
    soon = await new_key(
        server.app, expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(milliseconds=300)
    )
    import asyncio

    await asyncio.sleep(0.4)
    for dead in (key, soon):
        async with sdk(server, dead) as client:
            with pytest.raises(openai.AuthenticationError):
                await client.chat.completions.create(model="gpt-4-turbo", messages=HELLO)


async def test_a_model_outside_the_key_is_403_and_an_unknown_one_404(server: LiveServer) -> None:
    key = await new_key(server.app, models=["claude-3-sonnet"])
    async with sdk(server, key) as client:
        with pytest.raises(openai.PermissionDeniedError) as denied:
            await client.chat.completions.create(model="gpt-4-turbo", messages=HELLO)
        with pytest.raises(openai.NotFoundError) as missing:
            await client.chat.completions.create(model="gpt-9", messages=HELLO)
    assert denied.value.code == "model_not_allowed"
    assert (missing.value.code, missing.value.param) == ("model_not_found", "model")


BAD_PARAMETERS: list[tuple[dict[str, object], str]] = [
    ({"model": "gpt-4-turbo"}, "messages"),
    ({"model": "gpt-4-turbo", "messages": HELLO, "n": 2}, "n"),
    ({"model": "gpt-4-turbo", "messages": HELLO, "logit_bias": {"1": 1}}, "logit_bias"),
    ({"model": "gpt-4-turbo", "messages": HELLO, "temperature": 3}, "temperature"),
    ({"model": "claude-3-sonnet", "messages": HELLO, "temperature": 1.5}, "temperature"),
    ({"model": "claude-3-sonnet", "messages": HELLO, "seed": 7}, "seed"),
    (
        {
            "model": "claude-3-sonnet",
            "messages": HELLO,
            "response_format": {"type": "json_object"},
        },
        "response_format",
    ),
    (
        {
            "model": "mock",
            "messages": HELLO,
            "tools": [{"type": "function", "function": {"name": "f"}}],
        },
        "tools",
    ),
    (
        {"model": "gpt-4-turbo", "messages": [{"role": "robot", "content": "x"}]},
        "messages[0].role",
    ),
    (
        {"model": "gpt-4-turbo", "messages": [{"role": "user", "content": "a\x00b"}]},
        "messages[0].content",
    ),
    (
        {
            "model": "gpt-4-turbo",
            "messages": [{"role": "user", "content": [{"type": "image_url"}]}],
        },
        "messages[0].content[0]",
    ),
    ({"model": "gpt-4-turbo", "messages": HELLO, "max_tokens": 10**9}, "max_tokens"),
    (
        {"model": "gpt-4-turbo", "messages": HELLO, "stream_options": {"include_usage": True}},
        "stream_options",
    ),
]


async def test_a_bad_parameter_is_400_naming_it(server: LiveServer, fakes: Upstreams) -> None:
    key = await new_key(server.app)
    for body, param in BAD_PARAMETERS:
        response = await _post(server, key, body)
        assert response.status_code == 400, (param, response.text)
        error = response.json()["error"]
        assert (error["type"], error["param"]) == ("invalid_request_error", param)
    assert fakes.openai.chat_requests == []
    assert fakes.anthropic.chat_requests == []


async def test_neutral_values_of_unsupported_parameters_are_accepted(server: LiveServer) -> None:
    key = await new_key(server.app)
    body = {
        "model": "mock",
        "messages": HELLO,
        "n": 1,
        "presence_penalty": 0,
        "frequency_penalty": 0.0,
        "logprobs": False,
        "logit_bias": None,
    }
    assert (await _post(server, key, body)).status_code == 200


async def test_malformed_json_is_400(server: LiveServer) -> None:
    key = await new_key(server.app)
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        response = await http.post(
            "/v1/chat/completions",
            headers={"Authorization": f"Bearer {key}", "content-type": "application/json"},
            content=b"{not json",
        )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "body"


async def test_a_body_over_the_limit_is_413_in_openai_s_envelope(
    database_url: str, fakes: Upstreams
) -> None:
    settings = api_settings(database_url, fakes, max_request_bytes=65536)
    async with live_server(settings) as server:
        key = await new_key(server.app)
        async with sdk(server, key) as client:
            with pytest.raises(openai.APIStatusError) as refused:
                await client.chat.completions.create(
                    model="gpt-4-turbo", messages=[{"role": "user", "content": "x" * 70_000}]
                )
        records = await api_requests(server.app)
    assert refused.value.status_code == 413
    assert refused.value.code == "request_too_large"
    assert refused.value.type == "invalid_request_error"
    assert "65536 bytes" in refused.value.message
    assert records == []  # refused before the application read a byte
    assert fakes.openai.chat_requests == []


async def test_no_money_is_402_and_not_retried_by_the_sdk(
    server: LiveServer, fakes: Upstreams
) -> None:
    async with database_of(server.app).transaction() as session:
        await _make_account(server, session)
        await session.execute(update(Balance).where(Balance.user_id == 7).values(balance=5))
    key = await new_key(server.app)
    async with sdk(server, key) as client:  # max_retries: the SDK's default (2)
        with pytest.raises(openai.APIStatusError) as refused:
            await client.chat.completions.create(model="gpt-4-turbo", messages=HELLO)
    assert refused.value.status_code == 402
    assert refused.value.code == "insufficient_quota"
    assert refused.value.response.headers["x-should-retry"] == "false"
    records = await api_requests(server.app)
    assert [(r.status, r.error_code) for r in records] == [("failed", "INSUFFICIENT_BALANCE")]
    assert fakes.openai.chat_requests == []


async def _make_account(server: LiveServer, session: object) -> None:
    from llm_gateway.services.money.balances import ensure_account

    await ensure_account(session, 7, server.app.state.services.policy)  # type: ignore[arg-type]


async def test_a_spent_daily_limit_is_429_until_the_reset_and_not_retried(
    server: LiveServer, fakes: Upstreams
) -> None:
    fakes.openai.script(Scenario(prompt_tokens=20, completion_tokens=30))
    key = await new_key(server.app, daily_token_limit=60)
    async with sdk(server, key) as client:
        await client.chat.completions.create(model="gpt-4-turbo", messages=HELLO, max_tokens=30)
        with pytest.raises(openai.RateLimitError) as limited:
            await client.chat.completions.create(model="gpt-4-turbo", messages=HELLO)
    assert limited.value.code == "api_key_daily_limit_exceeded"
    headers = limited.value.response.headers
    assert headers["x-should-retry"] == "false"
    assert 0 < int(headers["retry-after"]) <= 24 * 3600
    assert len(fakes.openai.chat_requests) == 1
    refused = [r for r in await api_requests(server.app) if r.error_code == "QUOTA_EXCEEDED"]
    assert len(refused) == 1  # the SDK did not retry it
    # The user's own balance is untouched by the key's limit: another key still works.
    other = await new_key(server.app)
    async with sdk(server, other) as client:
        await client.chat.completions.create(model="gpt-4-turbo", messages=HELLO, max_tokens=30)
    await assert_exact(server.app)


async def test_the_rate_limit_is_429_with_retry_after(database_url: str, fakes: Upstreams) -> None:
    settings = api_settings(database_url, fakes, rate_limit_requests=1, rate_limit_window=60)
    async with live_server(settings) as server:
        key = await new_key(server.app)
        assert (await _post(server, key, {"model": "mock", "messages": HELLO})).status_code == 200
        response = await _post(server, key, {"model": "mock", "messages": HELLO})
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "rate_limit_exceeded"
    assert int(response.headers["retry-after"]) >= 1


@pytest.mark.parametrize(
    ("scenario", "status", "kind"),
    [
        (Scenario(status=503), 503, openai.InternalServerError),
        (Scenario(status=401), 502, openai.InternalServerError),
        (Scenario(first_byte_delay=2.0), 504, openai.InternalServerError),
    ],
)
async def test_upstream_failures_after_retries_are_5xx_and_charge_nothing(
    database_url: str,
    fakes: Upstreams,
    scenario: Scenario,
    status: int,
    kind: type[Exception],
) -> None:
    settings = api_settings(
        database_url, fakes, provider_max_retries=1, provider_first_token_timeout=0.5
    )
    fakes.openai.default = scenario
    async with live_server(settings) as server:
        key = await new_key(server.app)
        async with sdk(server, key, max_retries=0) as client:
            for stream in (False, True):
                with pytest.raises(kind) as failed:
                    await _complete(client, stream=stream)
                assert failed.value.status_code == status  # type: ignore[attr-defined]
        records = await api_requests(server.app)
        assert [r.status for r in records] == ["failed", "failed"]
        assert all(r.charged_tokens == 0 for r in records)
        state = await assert_exact(server.app)
    assert state.balance == 10_000


async def test_a_failure_mid_stream_is_an_error_event_the_sdk_raises(
    server: LiveServer, fakes: Upstreams
) -> None:
    cut = Scenario(text="One two three four", chunks=4, cut_after=2, cut="error", usage=False)
    fakes.openai.script(cut)
    key = await new_key(server.app)
    received: list[str] = []
    async with sdk(server, key) as client:
        stream = await client.chat.completions.create(
            model="gpt-4-turbo", messages=HELLO, stream=True
        )
        with pytest.raises(openai.APIError) as failed:
            await _read(stream, received)
    assert "".join(received) == "".join(cut.streamed())
    assert "provider" in failed.value.message
    (record,) = await api_requests(server.app)
    assert record.status == "failed"
    assert record.prompt_tokens is not None
    assert record.completion_tokens is not None
    assert record.charged_tokens == record.prompt_tokens + record.completion_tokens > 0
    await assert_exact(server.app)


async def test_errors_never_leak_internals(server: LiveServer) -> None:
    response = await _post(server, token(7), {"model": "gpt-4-turbo", "messages": "nope"})
    assert response.status_code == 400
    assert "Traceback" not in response.text


async def _complete(client: openai.AsyncOpenAI, *, stream: bool) -> None:
    """One completion, read to its end."""
    if not stream:
        await client.chat.completions.create(model="gpt-4-turbo", messages=HELLO)
        return
    chunks = await client.chat.completions.create(model="gpt-4-turbo", messages=HELLO, stream=True)
    async for _ in chunks:
        pass


async def _read(stream: Any, received: list[str]) -> None:
    async for chunk in stream:
        received.extend(c.delta.content or "" for c in chunk.choices)
