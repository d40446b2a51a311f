"""Prompt caching in the adapters: each provider's usage report normalised once (every input
token in ``prompt_tokens``, the cache's reads and writes beside it), and the Anthropic
request's cache breakpoints where they pay and nowhere on a short prompt. The real SDKs
talk to the fakes, which report usage exactly as each provider does."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import openai
import pytest

from llm_gateway.providers.anthropic import AnthropicProvider
from llm_gateway.providers.anthropic_cache import MAX_BREAKPOINTS, minimum_cacheable
from llm_gateway.providers.base import ChatMessage, ProviderRequest, ToolCall, Usage
from llm_gateway.providers.openai import OpenAIProvider
from tests.fakes import (
    DEFAULT_ANTHROPIC_KEY,
    DEFAULT_OPENAI_KEY,
    AnthropicFake,
    OpenAIFake,
    Scenario,
    fake_anthropic,
    fake_openai,
)

EPHEMERAL = {"type": "ephemeral"}
# About 2,250 tokens by the gateway's count: cacheable for every Claude model but the 4.5s.
LONG = "The quick brown fox jumps over the lazy dog, then naps in the sun. " * 100
# About 1,200: enough for Sonnet and Opus (1,024), too short for Haiku (2,048).
MEDIUM = "The quick brown fox jumps over the lazy dog, then naps in the sun. " * 55
CACHED = Scenario(
    prompt_tokens=3_000, cache_read_tokens=2_000, cache_write_tokens=900, completion_tokens=50
)


@pytest.fixture
async def anthropic_fake() -> AsyncIterator[AnthropicFake]:
    async with fake_anthropic() as fake:
        yield fake


@pytest.fixture
async def openai_fake() -> AsyncIterator[OpenAIFake]:
    async with fake_openai() as fake:
        yield fake


def ask(
    *turns: ChatMessage, model: str = "claude-3-opus-20240229", **fields: Any
) -> ProviderRequest:
    return ProviderRequest(model=model, messages=list(turns), max_tokens=64, **fields)


async def usage_of(provider: AnthropicProvider | OpenAIProvider, request: ProviderRequest) -> Usage:
    try:
        events = [event async for event in provider.stream(request)]
    finally:
        await provider.aclose()
    usage = events[-1]
    assert isinstance(usage, Usage), events
    return usage


async def sent_to(fake: AnthropicFake, request: ProviderRequest) -> dict[str, Any]:
    """The body the Anthropic adapter sent for ``request``."""
    await usage_of(AnthropicProvider(DEFAULT_ANTHROPIC_KEY, fake.base_url), request)
    body: dict[str, Any] = fake.chat_requests[-1].json
    return body


def marks(body: dict[str, Any]) -> int:
    return json.dumps(body).count('"cache_control"')


# --- usage, as each provider reports it -----------------------------------------------------


async def test_openai_counts_cached_tokens_inside_the_prompt(openai_fake: OpenAIFake) -> None:
    openai_fake.script(
        Scenario(
            prompt_tokens=2_000, cache_read_tokens=1_536, completion_tokens=90, reasoning_tokens=40
        )
    )
    async with openai.AsyncOpenAI(api_key=DEFAULT_OPENAI_KEY, base_url=openai_fake.base_url) as sdk:
        raw = await sdk.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "Hi"}]
        )
    assert raw.usage is not None  # the fake speaks OpenAI: cached tokens inside prompt_tokens
    assert raw.usage.prompt_tokens == 2_000
    assert raw.usage.prompt_tokens_details is not None
    assert raw.usage.prompt_tokens_details.cached_tokens == 1_536
    assert raw.usage.completion_tokens_details is not None
    assert raw.usage.completion_tokens_details.reasoning_tokens == 40

    openai_fake.script(
        Scenario(
            prompt_tokens=2_000, cache_read_tokens=1_536, completion_tokens=90, reasoning_tokens=40
        )
    )
    provider = OpenAIProvider(DEFAULT_OPENAI_KEY, openai_fake.base_url)
    usage = await usage_of(provider, ask(ChatMessage("user", "Hi"), model="gpt-4o"))
    assert usage == Usage(2_000, 90, cache_read_tokens=1_536, reasoning_tokens=40)
    assert usage.uncached_tokens == 464


async def test_anthropic_input_tokens_leave_the_cache_out_and_ours_put_it_back(
    anthropic_fake: AnthropicFake,
) -> None:
    anthropic_fake.script(CACHED)
    client = anthropic.AsyncAnthropic(api_key=DEFAULT_ANTHROPIC_KEY, base_url=anthropic_fake.url)
    async with client:
        stream = await client.messages.create(
            model="claude-3-opus-20240229",
            max_tokens=64,
            messages=[{"role": "user", "content": "Hi"}],
            stream=True,
        )
        events = [event async for event in stream]
    start = next(e for e in events if e.type == "message_start")
    delta = next(e for e in events if e.type == "message_delta")
    for reported in (start.message.usage, delta.usage):  # both, as the API sends them
        assert reported.input_tokens == 100  # neither read from nor written to the cache
        assert reported.cache_read_input_tokens == 2_000
        assert reported.cache_creation_input_tokens == 900
    assert delta.usage.output_tokens == 50

    anthropic_fake.script(CACHED)
    provider = AnthropicProvider(DEFAULT_ANTHROPIC_KEY, anthropic_fake.base_url)
    usage = await usage_of(provider, ask(ChatMessage("user", "Hi")))
    assert usage == Usage(3_000, 50, cache_read_tokens=2_000, cache_write_tokens=900)
    assert usage.uncached_tokens == 100


async def test_anthropic_thinking_tokens_are_reasoning(anthropic_fake: AnthropicFake) -> None:
    anthropic_fake.script(Scenario(prompt_tokens=40, completion_tokens=300, reasoning_tokens=220))
    provider = AnthropicProvider(DEFAULT_ANTHROPIC_KEY, anthropic_fake.base_url)
    usage = await usage_of(provider, ask(ChatMessage("user", "Think first.")))
    assert usage == Usage(40, 300, reasoning_tokens=220)


async def test_anthropic_without_thinking_reports_no_reasoning(
    anthropic_fake: AnthropicFake,
) -> None:
    anthropic_fake.script(Scenario(prompt_tokens=40, completion_tokens=30))
    provider = AnthropicProvider(DEFAULT_ANTHROPIC_KEY, anthropic_fake.base_url)
    usage = await usage_of(provider, ask(ChatMessage("user", "Hi")))
    assert usage == Usage(40, 30)
    assert usage.reasoning_tokens is None


# --- Anthropic's cache breakpoints ----------------------------------------------------------


async def test_a_long_system_prompt_history_and_prompt_are_marked(
    anthropic_fake: AnthropicFake,
) -> None:
    body = await sent_to(
        anthropic_fake,
        ask(
            ChatMessage("system", LONG),
            ChatMessage("user", "First question"),
            ChatMessage("assistant", "First answer"),
            ChatMessage("user", "Second question"),
        ),
    )
    assert body["system"] == [{"type": "text", "text": LONG, "cache_control": EPHEMERAL}]
    assert body["messages"] == [
        {"role": "user", "content": "First question"},
        # The history before the newest turn: an edited question starts with it.
        {
            "role": "assistant",
            "content": [{"type": "text", "text": "First answer", "cache_control": EPHEMERAL}],
        },
        # The whole prompt: the next turn starts with it.
        {
            "role": "user",
            "content": [{"type": "text", "text": "Second question", "cache_control": EPHEMERAL}],
        },
    ]
    assert marks(body) == 3 <= MAX_BREAKPOINTS


async def test_a_short_prompt_is_sent_without_any_breakpoint(
    anthropic_fake: AnthropicFake,
) -> None:
    body = await sent_to(
        anthropic_fake,
        ask(
            ChatMessage("system", "Answer in French."),
            ChatMessage("user", "Hi"),
            ChatMessage("assistant", "Bonjour."),
            ChatMessage("user", "Ça va?"),
        ),
    )
    assert body["system"] == "Answer in French."
    assert body["messages"][-1] == {"role": "user", "content": "Ça va?"}
    assert marks(body) == 0


async def test_only_prefixes_long_enough_are_marked(anthropic_fake: AnthropicFake) -> None:
    # A short system prompt before a long first question: the system prompt alone is too
    # short to cache, the prefixes ending after the long question are not.
    body = await sent_to(
        anthropic_fake,
        ask(
            ChatMessage("system", "Be brief."),
            ChatMessage("user", LONG),
            ChatMessage("assistant", "Noted."),
            ChatMessage("user", "Summarise it."),
        ),
    )
    assert body["system"] == "Be brief."
    first, history_end, newest = body["messages"]
    assert first == {"role": "user", "content": LONG}
    assert history_end["content"][-1]["cache_control"] == EPHEMERAL
    assert newest["content"][-1]["cache_control"] == EPHEMERAL
    assert marks(body) == 2


async def test_the_minimum_length_is_the_models(anthropic_fake: AnthropicFake) -> None:
    turns = (ChatMessage("system", MEDIUM), ChatMessage("user", "Hi"))
    sonnet = await sent_to(anthropic_fake, ask(*turns, model="claude-3-5-sonnet-20241022"))
    haiku = await sent_to(anthropic_fake, ask(*turns, model="claude-3-haiku-20240307"))
    assert marks(sonnet) == 2  # the system prompt and the whole prompt
    assert marks(haiku) == 0  # Haiku caches from 2,048 tokens only


async def test_a_tool_result_turn_is_marked_on_its_last_block(
    anthropic_fake: AnthropicFake,
) -> None:
    call = ToolCall("toolu_1", "lookup", '{"q": "fox"}')
    body = await sent_to(
        anthropic_fake,
        ask(
            ChatMessage("system", LONG),
            ChatMessage("user", "Look it up."),
            ChatMessage("assistant", "", tool_calls=(call,)),
            ChatMessage("tool", "A fox is a small canid.", tool_call_id="toolu_1"),
        ),
    )
    tool_use = body["messages"][1]["content"][-1]
    assert (tool_use["type"], tool_use["cache_control"]) == ("tool_use", EPHEMERAL)
    result = body["messages"][2]["content"][-1]
    assert (result["type"], result["cache_control"]) == ("tool_result", EPHEMERAL)
    assert marks(body) == 3


@pytest.mark.parametrize(
    ("model", "minimum"),
    [
        ("claude-3-opus-20240229", 1_024),
        ("claude-3-sonnet-20240229", 1_024),
        ("claude-sonnet-4-20250514", 1_024),
        ("claude-3-haiku-20240307", 2_048),
        ("claude-3-5-haiku-20241022", 2_048),
        ("claude-haiku-4-5-20251001", 4_096),
        ("claude-opus-4-5-20251101", 4_096),
    ],
)
def test_minimum_cacheable_lengths_by_family(model: str, minimum: int) -> None:
    assert minimum_cacheable(model) == minimum
