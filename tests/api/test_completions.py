"""``/v1/chat/completions`` driven by the official ``openai`` SDK, streamed and not, against
the fake upstreams: the answer, the usage, one ledger row naming the key, the record."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from llm_gateway.enums import LedgerKind
from tests.api_support import (
    Upstreams,
    api_requests,
    api_settings,
    new_key,
    sdk,
    usage_rows_of,
)
from tests.chat_support import assert_exact
from tests.fakes import Scenario
from tests.live import LiveServer, live_server

REPLY = "Paris is the capital of France."


@pytest.mark.parametrize("model", ["gpt-4-turbo", "claude-3-sonnet"])
async def test_a_completion_is_answered_charged_once_and_recorded(
    server: LiveServer, fakes: Upstreams, model: str
) -> None:
    fake = fakes.openai if model.startswith("gpt") else fakes.anthropic
    fake.script(Scenario(text=REPLY, chunks=4, prompt_tokens=30, completion_tokens=8))
    key = await new_key(server.app)
    async with sdk(server, key) as client:
        answer = await client.chat.completions.create(
            model=model,
            messages=[
                {"role": "developer", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "Capital of France?"}]},
            ],
            temperature=0.3,
            max_tokens=50,
        )
    assert answer.choices[0].message.content == REPLY
    assert answer.choices[0].finish_reason == "stop"
    assert answer.model == model
    assert answer.usage is not None
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (30, 8)
    assert answer.id.startswith("chatcmpl-")
    sent = fake.chat_requests[-1].json
    assert sent["temperature"] == 0.3
    assert sent["max_tokens"] == 50
    assert sent["stream"] is True  # the gateway always streams upstream
    (record,) = await api_requests(server.app)
    assert (record.status, record.model_name, record.stream) == ("complete", model, False)
    assert (record.prompt_tokens, record.completion_tokens, record.charged_tokens) == (30, 8, 38)
    assert record.api_key_id is not None
    assert record.request_body is None
    assert record.response is None
    (row,) = await usage_rows_of(server.app, record.id)
    assert (row.kind, row.amount, row.api_key_id) == (LedgerKind.USAGE, -38, record.api_key_id)
    state = await assert_exact(server.app)
    assert state.balance == 10_000 - 38


async def test_a_stream_arrives_as_openai_sends_it(server: LiveServer, fakes: Upstreams) -> None:
    fakes.openai.script(Scenario(text=REPLY, chunks=5, prompt_tokens=12, completion_tokens=7))
    key = await new_key(server.app)
    pieces: list[str] = []
    finish: list[str] = []
    usage: list[Any] = []
    async with sdk(server, key) as client:
        stream = await client.chat.completions.create(
            model="gpt-4-turbo",
            messages=[{"role": "user", "content": "Capital of France?"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        async for chunk in stream:
            assert chunk.object == "chat.completion.chunk"
            assert chunk.model == "gpt-4-turbo"
            assert chunk.system_fingerprint
            if chunk.usage is not None:
                assert chunk.choices == []
                usage.append(chunk.usage)
            for choice in chunk.choices:
                pieces.extend([choice.delta.content] if choice.delta.content else [])
                finish.extend([choice.finish_reason] if choice.finish_reason else [])
    assert "".join(pieces) == REPLY
    assert len(pieces) == 5  # each upstream delta is passed on as it comes
    assert finish == ["stop"]
    assert [(u.prompt_tokens, u.completion_tokens) for u in usage] == [(12, 7)]
    assert fakes.openai.chat_requests[-1].json["stream_options"] == {"include_usage": True}
    (record,) = await api_requests(server.app)
    assert (record.status, record.stream, record.charged_tokens) == ("complete", True, 19)
    await assert_exact(server.app)


async def test_the_wire_format_is_server_sent_events_ending_in_done(
    server: LiveServer, fakes: Upstreams
) -> None:
    fakes.openai.script(Scenario(text="Hi!", chunks=1))
    key = await new_key(server.app)
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        response = await http.post(
            "/v1/chat/completions",
            headers={"Authorization": f"Bearer {key}"},
            json={
                "model": "gpt-4-turbo",
                "messages": [{"role": "user", "content": "Hi"}],
                "stream": True,
            },
        )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = response.text.split("\n\n")
    assert events[-2:] == ["data: [DONE]", ""]
    assert all(event.startswith("data: {") for event in events[:-2])
    assert '"usage"' not in response.text  # not asked for: no usage chunk


async def test_usage_is_always_asked_of_the_upstream(server: LiveServer, fakes: Upstreams) -> None:
    fakes.openai.script(Scenario(text=REPLY, prompt_tokens=20, completion_tokens=9))
    key = await new_key(server.app)
    async with sdk(server, key) as client:
        stream = await client.chat.completions.create(
            model="gpt-4-turbo", messages=[{"role": "user", "content": "Hi"}], stream=True
        )
        async for _ in stream:
            pass
    assert fakes.openai.chat_requests[-1].json["stream_options"] == {"include_usage": True}
    (record,) = await api_requests(server.app)
    assert record.charged_tokens == 29  # the upstream's report, not a count


async def test_an_access_token_works_as_well_as_a_key(server: LiveServer, fakes: Upstreams) -> None:
    from tests.support import token

    async with sdk(server, token(7)) as client:
        answer = await client.chat.completions.create(
            model="gpt-4-turbo", messages=[{"role": "user", "content": "Hi"}]
        )
    assert answer.choices[0].message.content
    (record,) = await api_requests(server.app)
    assert record.api_key_id is None


async def test_models_are_the_enabled_models_by_public_name(server: LiveServer) -> None:
    key = await new_key(server.app)
    restricted = await new_key(server.app, models=["claude-3-sonnet"])
    async with sdk(server, key) as client:
        listed = [m.id async for m in client.models.list()]
        one = await client.models.retrieve("gpt-4-turbo")
    assert {"gpt-4-turbo", "claude-3-sonnet", "mock"} <= set(listed)
    assert "GigaChat" not in listed  # seeded disabled
    assert (one.id, one.owned_by, one.object) == ("gpt-4-turbo", "openai", "model")
    async with sdk(server, restricted) as client:
        assert [m.id async for m in client.models.list()] == ["claude-3-sonnet"]


async def test_cors_lets_a_browser_widget_call_the_api(database_url: str, fakes: Upstreams) -> None:
    settings = api_settings(database_url, fakes, cors_origins=["https://app.example"])
    async with live_server(settings) as server, httpx.AsyncClient(base_url=server.base_url) as http:
        preflight = await http.options(
            "/v1/chat/completions",
            headers={
                "Origin": "https://app.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type, x-stainless-os",
            },
        )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://app.example"
    assert "x-stainless-os" in preflight.headers["access-control-allow-headers"].lower()
