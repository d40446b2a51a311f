"""A chat works end to end through each provider's adapter and fake, and the mock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import update

from llm_gateway.db.models import Model
from llm_gateway.settings import Settings
from tests.chat_support import assert_exact, finished, new_dialog, send
from tests.conftest import make_settings
from tests.factories import database_of
from tests.fakes import (
    DEFAULT_ANTHROPIC_KEY,
    DEFAULT_GIGACHAT_AUTH_KEY,
    DEFAULT_OPENAI_KEY,
    AnthropicFake,
    GigaChatFake,
    OpenAIFake,
    Scenario,
    fake_anthropic,
    fake_gigachat,
    fake_openai,
)
from tests.support import GraphQLClient

REPLY = "Bonjour! Voici la réponse."


@pytest.fixture
async def fakes() -> AsyncIterator[tuple[OpenAIFake, AnthropicFake, GigaChatFake]]:
    async with fake_openai() as openai, fake_anthropic() as anthropic, fake_gigachat() as giga:
        yield openai, anthropic, giga


@pytest.fixture
def settings(database_url: str, fakes: tuple[OpenAIFake, AnthropicFake, GigaChatFake]) -> Settings:
    openai, anthropic, giga = fakes
    return make_settings(
        database_url,
        openai_api_key=DEFAULT_OPENAI_KEY,
        openai_base_url=openai.base_url,
        anthropic_api_key=DEFAULT_ANTHROPIC_KEY,
        anthropic_base_url=anthropic.base_url,
        gigachat_auth_key=DEFAULT_GIGACHAT_AUTH_KEY,
        gigachat_base_url=giga.base_url,
        gigachat_auth_url=giga.auth_url,
    )


@pytest.mark.parametrize(
    ("model", "index"), [("gpt-4-turbo", 0), ("claude-3-sonnet", 1), ("GigaChat", 2)]
)
async def test_each_provider_answers_through_the_gateway(
    gql: GraphQLClient,
    app: Any,
    fakes: tuple[OpenAIFake, AnthropicFake, GigaChatFake],
    model: str,
    index: int,
) -> None:
    async with database_of(app).transaction() as session:  # GigaChat ships disabled
        await session.execute(update(Model).where(Model.name == model).values(enabled=True))
    fake = fakes[index]
    fake.script(Scenario(text=REPLY, chunks=5, prompt_tokens=40, completion_tokens=9))
    dialog_id = await new_dialog(gql, model=model, systemPrompt="Answer in French.")
    sent = (await send(gql, dialog_id, "Say hello", temperature=0.5)).ok()["sendMessage"]
    answer = await finished(app, sent["assistantMessage"]["id"])
    assert (answer.status, answer.content, answer.model_name) == ("complete", REPLY, model)
    assert (answer.prompt_tokens, answer.completion_tokens, answer.charged_tokens) == (40, 9, 49)
    assert answer.cost_usd is not None
    body = fake.chat_requests[-1].json
    assert body["temperature"] == 0.5
    assert body["stream"] is True
    if model.startswith("claude"):
        assert body["model"] == "claude-sonnet-4-6"
        assert body["system"] == "Answer in French."
        assert body["messages"] == [{"role": "user", "content": "Say hello"}]
    else:
        assert body["messages"][0] == {"role": "system", "content": "Answer in French."}
    state = await assert_exact(app)
    assert state.balance == 10_000 - 49


async def test_the_mock_model_answers_without_any_key(gql: GraphQLClient, app: Any) -> None:
    dialog_id = await new_dialog(gql)  # the default model is mock
    sent = (await send(gql, dialog_id, "Is anyone there?")).ok()["sendMessage"]
    answer = await finished(app, sent["assistantMessage"]["id"])
    assert answer.status == "complete"
    assert "Is anyone there?" in answer.content
    assert answer.model_name == "mock"
    state = await assert_exact(app)
    assert state.balance == 10_000 - (answer.charged_tokens or 0)


async def test_a_provider_without_credentials_fails_honestly(
    database_url: str, gql: GraphQLClient, app: Any
) -> None:
    # The app under test has keys; a fresh one without an Anthropic key cannot answer.
    import httpx
    from asgi_lifespan import LifespanManager

    from llm_gateway.app import create_app

    bare = create_app(make_settings(database_url))
    async with LifespanManager(bare):
        transport = httpx.ASGITransport(app=bare)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            client = GraphQLClient(http)
            dialog_id = await new_dialog(client, model="claude-3-sonnet")
            sent = (await send(client, dialog_id, "hi")).ok()["sendMessage"]
            answer = await finished(bare, sent["assistantMessage"]["id"])
        assert (answer.status, answer.error_code) == ("failed", "PROVIDER_AUTH")
        assert (await assert_exact(bare)).balance == 10_000
