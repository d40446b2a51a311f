"""Prompt caching through a chat: each provider's cached tokens charged at their own weight
and USD price, to the token; breakpoints on Anthropic requests; a dialog's usage summed in
one batch; what caching saved in the staff's statistics; the metrics carry the parts."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from llm_gateway.db.models import TokenTransaction
from llm_gateway.settings import Settings
from tests.chat_support import assert_exact, finished, new_dialog, send
from tests.conftest import make_settings
from tests.factories import database_of, price_for_worked_examples
from tests.fakes import (
    DEFAULT_ANTHROPIC_KEY,
    DEFAULT_OPENAI_KEY,
    AnthropicFake,
    OpenAIFake,
    Scenario,
    fake_anthropic,
    fake_openai,
)
from tests.platform.test_query_counts import count_statements
from tests.support import GraphQLClient

EPHEMERAL = {"type": "ephemeral"}
LONG_SYSTEM = "You answer questions about foxes, dogs and the sun, in detail. " * 100
# claude-3-opus as priced for the worked examples (tests.factories.WORKED_PRICES):
# weights 1 (prompt), 0.1 (cache read), 1.25 (cache write), 1
# (completion); USD per 1k 0.015, 0.0015, 0.01875, 0.075.
CLAUDE = Scenario(
    text="Cached.",
    prompt_tokens=3_000,
    cache_read_tokens=2_003,
    cache_write_tokens=800,
    completion_tokens=50,
)
CLAUDE_CHARGE = 1_448  # ceil(197·1 + 800·1.25 + 2,003·0.1 + 50·1) = ceil(1,447.3)
CLAUDE_COST = Decimal("0.0247095")  # (197·0.015 + 800·0.01875 + 2,003·0.0015 + 50·0.075) / 1000
# gpt-4-turbo as priced for the worked examples: weights 1, 0.5 (cache read), 1 (cache
# write), 1; USD per 1k 0.01,
# 0.005, 0.01, 0.03. OpenAI reports no cache writes.
GPT = Scenario(
    text="Cached too.",
    prompt_tokens=2_001,
    cache_read_tokens=1_537,
    completion_tokens=101,
    reasoning_tokens=40,
)
GPT_CHARGE = 1_334  # ceil(464·1 + 1,537·0.5 + 101·1) = ceil(1,333.5)
GPT_COST = Decimal("0.015355")  # (464·0.01 + 1,537·0.005 + 101·0.03) / 1000

MESSAGE_FIELDS = """promptTokens cacheReadTokens cacheWriteTokens completionTokens
  reasoningTokens chargedTokens"""
USAGE_FIELDS = f"{MESSAGE_FIELDS} costUsd"


@pytest.fixture(autouse=True)
async def worked_prices(app: Any) -> None:
    await price_for_worked_examples(app)


@pytest.fixture
async def fakes() -> AsyncIterator[tuple[OpenAIFake, AnthropicFake]]:
    async with fake_openai() as openai, fake_anthropic() as anthropic:
        yield openai, anthropic


@pytest.fixture
def settings(database_url: str, fakes: tuple[OpenAIFake, AnthropicFake]) -> Settings:
    openai, anthropic = fakes
    return make_settings(
        database_url,
        openai_api_key=DEFAULT_OPENAI_KEY,
        openai_base_url=openai.base_url,
        anthropic_api_key=DEFAULT_ANTHROPIC_KEY,
        anthropic_base_url=anthropic.base_url,
    )


async def answer(gql: GraphQLClient, app: Any, dialog_id: str, content: str = "Hello") -> Any:
    sent = (await send(gql, dialog_id, content)).ok()["sendMessage"]
    return await finished(app, sent["assistantMessage"]["id"])


async def ledger_row(app: Any, message_id: Any) -> TokenTransaction:
    async with database_of(app).read() as session:
        row = await session.scalar(
            select(TokenTransaction).where(TokenTransaction.message_id == message_id)
        )
    assert row is not None
    return row


@pytest.mark.parametrize(
    ("model", "scenario", "charge", "cost", "written", "reasoning"),
    [
        ("claude-3-opus", CLAUDE, CLAUDE_CHARGE, CLAUDE_COST, 800, None),
        ("gpt-4-turbo", GPT, GPT_CHARGE, GPT_COST, 0, 40),
    ],
)
async def test_cached_tokens_are_charged_at_their_own_weight_and_price(
    gql: GraphQLClient,
    app: Any,
    fakes: tuple[OpenAIFake, AnthropicFake],
    model: str,
    scenario: Scenario,
    charge: int,
    cost: Decimal,
    written: int,
    reasoning: int | None,
) -> None:
    fake = fakes[1] if model.startswith("claude") else fakes[0]
    fake.script(scenario)
    dialog_id = await new_dialog(gql, model=model)
    message = await answer(gql, app, dialog_id)

    assert (message.status, message.model_name) == ("complete", model)
    assert (message.prompt_tokens, message.completion_tokens) == (
        scenario.prompt_tokens,
        scenario.completion_tokens,
    )
    assert (message.cache_read_tokens, message.cache_write_tokens) == (
        scenario.cache_read_tokens,
        written,
    )
    assert message.reasoning_tokens == reasoning
    assert (message.charged_tokens, message.cost_usd) == (charge, cost)
    row = await ledger_row(app, message.id)
    assert (row.amount, row.cost_usd, row.uncharged_tokens) == (-charge, cost, None)
    assert (row.prompt_tokens, row.cache_read_tokens, row.cache_write_tokens) == (
        scenario.prompt_tokens,
        scenario.cache_read_tokens,
        written,
    )
    assert (row.completion_tokens, row.reasoning_tokens) == (scenario.completion_tokens, reasoning)
    state = await assert_exact(app)
    assert state.balance == 10_000 - charge

    # Clients read the same through GraphQL.
    messages = (
        await gql(
            f"""query($id: UUID!) {{ messages(dialogId: $id) {{ edges {{ node {{
                role {MESSAGE_FIELDS} }} }} }} }}""",
            {"id": dialog_id},
            user=7,
        )
    ).ok()["messages"]["edges"]
    assert messages[-1]["node"] == {
        "role": "ASSISTANT",
        "promptTokens": scenario.prompt_tokens,
        "cacheReadTokens": scenario.cache_read_tokens,
        "cacheWriteTokens": written,
        "completionTokens": scenario.completion_tokens,
        "reasoningTokens": reasoning,
        "chargedTokens": charge,
    }
    metrics = app.state.services.metrics
    labels = {"model": model, "provider": fake_provider(model)}
    parts = "llm_gateway_token_parts_total"
    read = metrics.sample(parts, gen_ai_token_type="cache_read", **labels)
    assert read == scenario.cache_read_tokens
    assert metrics.sample(parts, gen_ai_token_type="cache_creation", **labels) == written
    assert metrics.sample(parts, gen_ai_token_type="reasoning", **labels) == (reasoning or 0)


def fake_provider(model: str) -> str:
    return "anthropic" if model.startswith("claude") else "openai"


async def test_anthropic_requests_carry_breakpoints_turn_after_turn(
    gql: GraphQLClient, app: Any, fakes: tuple[OpenAIFake, AnthropicFake]
) -> None:
    anthropic = fakes[1]
    dialog_id = await new_dialog(gql, model="claude-3-opus", systemPrompt=LONG_SYSTEM)
    await answer(gql, app, dialog_id, "First question")
    first = anthropic.chat_requests[-1].json
    assert first["system"] == [{"type": "text", "text": LONG_SYSTEM, "cache_control": EPHEMERAL}]
    assert first["messages"] == [
        {
            "role": "user",
            "content": [{"type": "text", "text": "First question", "cache_control": EPHEMERAL}],
        }
    ]
    await answer(gql, app, dialog_id, "Second question")
    second = anthropic.chat_requests[-1].json
    marked = [m["content"][-1].get("cache_control") for m in second["messages"][1:]]
    assert second["messages"][0]["content"] == "First question"  # read back from the cache
    assert marked == [EPHEMERAL, EPHEMERAL]  # the history's end, the newest turn


async def test_dialog_usage_sums_each_dialogs_answers_in_one_batch(
    gql: GraphQLClient, app: Any, fakes: tuple[OpenAIFake, AnthropicFake]
) -> None:
    openai, anthropic = fakes
    claude = await new_dialog(gql, model="claude-3-opus", title="claude")
    anthropic.script(CLAUDE, Scenario(text="Plain.", prompt_tokens=20, completion_tokens=5))
    await answer(gql, app, claude)
    await answer(gql, app, claude, "Again")
    gpt = await new_dialog(gql, model="gpt-4-turbo", title="gpt")
    openai.script(GPT)
    await answer(gql, app, gpt)
    await new_dialog(gql, title="quiet")  # no answer yet

    query = f"{{ dialogs {{ edges {{ node {{ title usage {{ {USAGE_FIELDS} }} }} }} }} }}"
    with count_statements(app) as statements:
        edges = (await gql(query, user=7)).ok()["dialogs"]["edges"]
    usage = {e["node"]["title"]: e["node"]["usage"] for e in edges}
    costs = {title: Decimal(row.pop("costUsd")) for title, row in usage.items()}
    assert costs == {
        "claude": CLAUDE_COST + Decimal("0.000675"),  # 20·0.015 + 5·0.075 per 1k
        "gpt": GPT_COST,
        "quiet": 0,
    }
    assert usage["claude"] == {
        "promptTokens": 3_020,
        "cacheReadTokens": 2_003,
        "cacheWriteTokens": 800,
        "completionTokens": 55,
        "reasoningTokens": 0,
        "chargedTokens": CLAUDE_CHARGE + 25,
    }
    assert usage["gpt"] == {
        "promptTokens": 2_001,
        "cacheReadTokens": 1_537,
        "cacheWriteTokens": 0,
        "completionTokens": 101,
        "reasoningTokens": 40,
        "chargedTokens": GPT_CHARGE,
    }
    assert usage["quiet"]["chargedTokens"] == 0
    summed = [s for s in statements if "sum(" in s.lower()]
    assert len(summed) == 1, statements  # one batch for the whole page


async def test_usage_stats_show_what_caching_saved(
    gql: GraphQLClient, app: Any, fakes: tuple[OpenAIFake, AnthropicFake]
) -> None:
    openai, anthropic = fakes
    anthropic.script(CLAUDE)
    await answer(gql, app, await new_dialog(gql, model="claude-3-opus"))
    openai.script(GPT)
    await answer(gql, app, await new_dialog(gql, model="gpt-4-turbo"))

    today = dt.datetime.now(dt.UTC).date().isoformat()
    fields = "key cacheReadTokens cacheWriteTokens reasoningTokens cacheSavedTokens cacheSavedUsd"
    stats = (
        await gql(
            f"""query($d: Date!) {{ usageStats(from: $d, to: $d, groupBy: MODEL) {{
                rows {{ {fields} }} total {{ {fields} chargedTokens costUsd }} }} }}""",
            {"d": today},
            user=1,
            staff=True,
        )
    ).ok()["usageStats"]
    rows = {row["key"]: row for row in stats["rows"]}
    # Reads at the prompt's weight less their own, less the writes' premium over it.
    assert rows["claude-3-opus"] == {
        "key": "claude-3-opus",
        "cacheReadTokens": 2_003,
        "cacheWriteTokens": 800,
        "reasoningTokens": 0,
        "cacheSavedTokens": 1_603,  # 2,003·(1 − 0.1) − 800·(1.25 − 1) = 1,602.7
        "cacheSavedUsd": "0.02404050",  # (2,003·0.0135 − 800·0.00375) / 1000
    }
    assert rows["gpt-4-turbo"] == {
        "key": "gpt-4-turbo",
        "cacheReadTokens": 1_537,
        "cacheWriteTokens": 0,
        "reasoningTokens": 40,
        "cacheSavedTokens": 769,  # 1,537·0.5 = 768.5
        "cacheSavedUsd": "0.00768500",  # 1,537·0.005 / 1000
    }
    total = stats["total"]
    assert (total["cacheSavedTokens"], total["cacheSavedUsd"]) == (2_371, "0.03172550")
    assert total["chargedTokens"] == CLAUDE_CHARGE + GPT_CHARGE
    assert Decimal(total["costUsd"]) == CLAUDE_COST + GPT_COST
