"""``/v1/chat/completions`` with prompt caching, through the official ``openai`` SDK: each
provider's cached tokens charged at their own weight and USD price, to the token, and
reported back as OpenAI reports them (``prompt_tokens_details.cached_tokens``,
``completion_tokens_details.reasoning_tokens``), streamed or not."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from tests.api_support import Upstreams, api_requests, new_key, sdk, usage_rows_of
from tests.chat_support import assert_exact
from tests.factories import price_for_worked_examples
from tests.fakes import Scenario
from tests.live import LiveServer

# Charges and costs at the seeded prices (README, "Prompt caching"):
# claude-3-opus: ceil(197·1 + 800·1.25 + 2,003·0.1 + 50·1) = 1,448 tokens,
#   (197·0.015 + 800·0.01875 + 2,003·0.0015 + 50·0.075) / 1000 = $0.0247095;
# gpt-4-turbo: ceil(464·1 + 1,537·0.5 + 101·1) = 1,334 tokens,
#   (464·0.01 + 1,537·0.005 + 101·0.03) / 1000 = $0.015355.
CASES = [
    (
        "claude-3-opus",
        Scenario(
            prompt_tokens=3_000,
            cache_read_tokens=2_003,
            cache_write_tokens=800,
            completion_tokens=50,
        ),
        1_448,
        Decimal("0.0247095"),
    ),
    (
        "gpt-4-turbo",
        Scenario(
            prompt_tokens=2_001, cache_read_tokens=1_537, completion_tokens=101, reasoning_tokens=40
        ),
        1_334,
        Decimal("0.015355"),
    ),
]


def fake_of(fakes: Upstreams, model: str) -> Any:
    return fakes.anthropic if model.startswith("claude") else fakes.openai


@pytest.mark.parametrize(("model", "scenario", "charge", "cost"), CASES)
async def test_a_cached_completion_is_charged_and_reported_as_openai_does(
    server: LiveServer,
    fakes: Upstreams,
    model: str,
    scenario: Scenario,
    charge: int,
    cost: Decimal,
) -> None:
    fake_of(fakes, model).script(scenario)
    await price_for_worked_examples(server.app)
    key = await new_key(server.app)
    async with sdk(server, key) as client:
        answer = await client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "Hello"}]
        )
    usage = answer.usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens) == (
        scenario.prompt_tokens,
        scenario.completion_tokens,
    )
    assert usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == scenario.cache_read_tokens
    assert usage.completion_tokens_details is not None
    assert usage.completion_tokens_details.reasoning_tokens == scenario.reasoning_tokens

    (record,) = await api_requests(server.app)
    assert (record.charged_tokens, record.cost_usd) == (charge, cost)
    assert (record.cache_read_tokens, record.cache_write_tokens) == (
        scenario.cache_read_tokens,
        scenario.cache_write_tokens,
    )
    (row,) = await usage_rows_of(server.app, record.id)
    assert (row.amount, row.cost_usd, row.uncharged_tokens) == (-charge, cost, None)
    assert (row.cache_read_tokens, row.cache_write_tokens) == (
        scenario.cache_read_tokens,
        scenario.cache_write_tokens,
    )
    state = await assert_exact(server.app)
    assert state.balance == 10_000 - charge


async def test_the_streams_usage_chunk_carries_the_details(
    server: LiveServer, fakes: Upstreams
) -> None:
    model, scenario, charge, _ = CASES[1]
    fake_of(fakes, model).script(scenario)
    await price_for_worked_examples(server.app)
    key = await new_key(server.app)
    async with sdk(server, key) as client:
        stream = await client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": "Hello"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        reported = [chunk.usage async for chunk in stream if chunk.usage is not None]
    (usage,) = reported
    assert usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == 1_537
    assert usage.completion_tokens_details is not None
    assert usage.completion_tokens_details.reasoning_tokens == 40
    (record,) = await api_requests(server.app)
    assert record.charged_tokens == charge
    await assert_exact(server.app)
