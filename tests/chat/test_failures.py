"""The failure matrix: every way a generation can end leaves the data exact.

Each case asserts the answer's final status and error code, that the user's message is
saved, and the ledger and holds. The real SDK adapters run against fake upstreams.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select

from llm_gateway.db.models import Message
from llm_gateway.services.plumbing.broker_events import dialog_channel
from llm_gateway.settings import Settings
from tests.chat_support import assert_exact, finished, new_dialog, send
from tests.conftest import make_settings
from tests.factories import database_of
from tests.fakes import (
    DEFAULT_ANTHROPIC_KEY,
    DEFAULT_OPENAI_KEY,
    AnthropicFake,
    OpenAIFake,
    Scenario,
    fake_anthropic,
    fake_openai,
)
from tests.support import GraphQLClient

REPLY = "The quick brown fox jumps over the lazy dog."


@pytest.fixture
async def openai() -> AsyncIterator[OpenAIFake]:
    async with fake_openai() as fake:
        yield fake


@pytest.fixture
async def anthropic() -> AsyncIterator[AnthropicFake]:
    async with fake_anthropic() as fake:
        yield fake


@pytest.fixture
def settings(database_url: str, openai: OpenAIFake, anthropic: AnthropicFake) -> Settings:
    return make_settings(
        database_url,
        openai_api_key=DEFAULT_OPENAI_KEY,
        openai_base_url=openai.base_url,
        anthropic_api_key=DEFAULT_ANTHROPIC_KEY,
        anthropic_base_url=anthropic.base_url,
        provider_retry_base_seconds=0.01,
        provider_first_token_timeout=0.5,
        provider_idle_timeout=0.5,
        generation_flush_seconds=0.01,
        shutdown_grace_seconds=0.3,
    )


async def user_messages(app: Any, dialog_id: str) -> list[Message]:
    async with database_of(app).read() as session:
        rows = await session.scalars(
            select(Message).where(Message.dialog_id == uuid.UUID(dialog_id), Message.role == "user")
        )
        return list(rows)


async def run(
    gql: GraphQLClient, app: Any, model: str = "gpt-4-turbo", content: str = "Hi there"
) -> tuple[str, Message]:
    dialog_id = await new_dialog(gql, model=model)
    sent = (await send(gql, dialog_id, content)).ok()["sendMessage"]
    answer = await finished(app, sent["assistantMessage"]["id"])
    [question] = await user_messages(app, dialog_id)
    assert question.content == content
    assert question.status == "complete"
    return dialog_id, answer


async def test_success_charges_the_reported_usage(
    gql: GraphQLClient, app: Any, openai: OpenAIFake
) -> None:
    openai.script(Scenario(text=REPLY, chunks=4, prompt_tokens=30, completion_tokens=12))
    _, answer = await run(gql, app)
    assert (answer.status, answer.error_code, answer.content) == ("complete", None, REPLY)
    assert (answer.prompt_tokens, answer.completion_tokens, answer.charged_tokens) == (30, 12, 42)
    state = await assert_exact(app)
    assert state.balance == 10_000 - 42
    [usage] = state.usage_rows
    assert usage.amount == -42
    assert usage.balance_after == state.balance


async def test_provider_401_fails_without_charge(
    gql: GraphQLClient, app: Any, openai: OpenAIFake
) -> None:
    openai.script(Scenario(status=401))
    _, answer = await run(gql, app)
    assert (answer.status, answer.error_code, answer.content) == ("failed", "PROVIDER_AUTH", "")
    assert answer.charged_tokens == 0
    assert len(openai.chat_requests) == 1  # not retried
    state = await assert_exact(app)
    assert state.balance == 10_000
    assert state.usage_rows == []
    assert state.reservation_states == ["released"]


async def test_unknown_upstream_model_fails(
    gql: GraphQLClient, app: Any, openai: OpenAIFake
) -> None:
    openai.script(Scenario(status=404))
    _, answer = await run(gql, app)
    assert (answer.status, answer.error_code) == ("failed", "MODEL_NOT_FOUND")
    assert (await assert_exact(app)).balance == 10_000


async def test_429_then_success_is_retried(
    gql: GraphQLClient, app: Any, openai: OpenAIFake
) -> None:
    openai.script(Scenario(status=429, retry_after_ms=5), Scenario(text=REPLY))
    _, answer = await run(gql, app)
    assert (answer.status, answer.content) == ("complete", REPLY)
    assert len(openai.chat_requests) == 2
    state = await assert_exact(app)
    assert len(state.usage_rows) == 1


async def test_429_until_retries_run_out(gql: GraphQLClient, app: Any, openai: OpenAIFake) -> None:
    openai.script(*[Scenario(status=429, retry_after_ms=1)] * 3)
    _, answer = await run(gql, app)
    assert (answer.status, answer.error_code) == ("failed", "RATE_LIMITED")
    assert len(openai.chat_requests) == 3  # the first try and two retries
    assert (await assert_exact(app)).balance == 10_000


@pytest.mark.parametrize("status", [500, 503])
async def test_openai_server_errors(
    gql: GraphQLClient, app: Any, openai: OpenAIFake, status: int
) -> None:
    openai.script(*[Scenario(status=status)] * 3)
    _, answer = await run(gql, app)
    assert (answer.status, answer.error_code) == ("failed", "PROVIDER_UNAVAILABLE")
    assert len(openai.chat_requests) == 3
    assert (await assert_exact(app)).balance == 10_000


async def test_anthropic_overloaded_529(
    gql: GraphQLClient, app: Any, anthropic: AnthropicFake
) -> None:
    anthropic.script(*[Scenario(status=529)] * 3)
    _, answer = await run(gql, app, model="claude-3-sonnet")
    assert (answer.status, answer.error_code) == ("failed", "PROVIDER_UNAVAILABLE")
    assert (await assert_exact(app)).balance == 10_000


async def test_no_first_byte_before_the_timeout(
    gql: GraphQLClient, app: Any, openai: OpenAIFake
) -> None:
    openai.script(*[Scenario(first_byte_delay=2.0)] * 3)
    _, answer = await run(gql, app)
    assert (answer.status, answer.error_code) == ("failed", "PROVIDER_TIMEOUT")
    assert (await assert_exact(app)).balance == 10_000


async def test_cut_mid_stream_keeps_the_text_and_charges_what_was_produced(
    gql: GraphQLClient, app: Any, openai: OpenAIFake
) -> None:
    scenario = Scenario(text=REPLY, chunks=4, cut_after=2)
    openai.script(scenario)
    _, answer = await run(gql, app)
    partial = "".join(scenario.streamed())
    assert (answer.status, answer.error_code, answer.content) == ("failed", "STREAM_CUT", partial)
    assert answer.completion_tokens is not None
    assert answer.completion_tokens > 0
    assert answer.prompt_tokens is not None
    assert answer.charged_tokens == answer.prompt_tokens + answer.completion_tokens
    state = await assert_exact(app)
    assert state.balance == 10_000 - answer.charged_tokens
    assert len(openai.chat_requests) == 1  # never retried after output


async def test_stream_without_usage_is_counted(
    gql: GraphQLClient, app: Any, openai: OpenAIFake
) -> None:
    openai.script(Scenario(text=REPLY, usage=False))
    _, answer = await run(gql, app)
    assert answer.status == "complete"
    assert answer.completion_tokens == 10  # cl100k tokens of REPLY
    assert answer.prompt_tokens is not None
    assert answer.prompt_tokens > 0
    assert answer.charged_tokens == answer.prompt_tokens + 10
    state = await assert_exact(app)
    assert state.balance == 10_000 - answer.charged_tokens


async def test_cancel_stops_and_charges_what_was_produced(
    gql: GraphQLClient, app: Any, openai: OpenAIFake
) -> None:
    openai.script(Scenario(text=REPLY * 20, chunks=200, chunk_delay=0.01))
    dialog_id = await new_dialog(gql, model="gpt-4-turbo")
    async with app.state.services.broker.subscribe(dialog_channel(dialog_id)) as events:
        sent = (await send(gql, dialog_id, "Tell me a long story")).ok()["sendMessage"]
        assistant_id = sent["assistantMessage"]["id"]
        async for event in events:  # some text has streamed
            if event["type"] == "delta" and event["seq"] >= 3:
                break
    cancelled = await gql(
        "mutation($id: UUID!) { cancelGeneration(input: {messageId: $id}) "
        "{ status content errorCode chargedTokens } }",
        {"id": assistant_id},
        user=7,
    )
    final = cancelled.ok()["cancelGeneration"]
    assert final["status"] == "CANCELLED"
    assert final["errorCode"] == "CANCELLED"
    assert 0 < len(final["content"]) < len(REPLY * 20)
    answer = await finished(app, assistant_id)
    assert answer.charged_tokens == final["chargedTokens"]
    assert answer.charged_tokens == (answer.prompt_tokens or 0) + (answer.completion_tokens or 0)
    state = await assert_exact(app)
    assert state.balance == 10_000 - answer.charged_tokens
    # Cancelling again changes nothing.
    again = await gql(
        "mutation($id: UUID!) { cancelGeneration(input: {messageId: $id}) { status } }",
        {"id": assistant_id},
        user=7,
    )
    assert again.ok()["cancelGeneration"]["status"] == "CANCELLED"
    assert (await assert_exact(app)).balance == state.balance
