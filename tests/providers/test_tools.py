"""Tool calls, structured output and finish reasons through the real adapters and SDKs.

Requests speak OpenAI's chat-completions vocabulary; each adapter must carry it to its
upstream in that upstream's wire format, and bring streamed tool calls back as
``ToolCallDelta`` fragments followed by one ``Finish`` and the ``Usage``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from llm_gateway.providers.anthropic import AnthropicProvider
from llm_gateway.providers.base import (
    ChatMessage,
    ErrorKind,
    Finish,
    Provider,
    ProviderError,
    ProviderRequest,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from llm_gateway.providers.gigachat import GigaChatProvider
from llm_gateway.providers.mock import MockProvider
from llm_gateway.providers.openai import OpenAIProvider
from tests.fakes import (
    AnthropicFake,
    FakeUpstream,
    OpenAIFake,
    Scenario,
    fake_anthropic,
    fake_gigachat,
    fake_openai,
)
from tests.fakes.base import Frame, ScriptedStream
from tests.live import serve_asgi

SYSTEM = "You are terse."
WEATHER_PARAMETERS = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
}
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city.",
        "parameters": WEATHER_PARAMETERS,
    },
}
CLOCK = {"type": "function", "function": {"name": "get_time"}}  # no description, no parameters
PARIS = '{"city": "Paris"}'
ASK = ProviderRequest(
    model="test-model",
    messages=[ChatMessage("system", SYSTEM), ChatMessage("user", "Weather in Paris?")],
    max_tokens=64,
    tools=(WEATHER, CLOCK),
)
ASK_PLAIN = ProviderRequest(model="test-model", messages=[ChatMessage("user", "Hi")], max_tokens=16)

pytestmark = pytest.mark.asyncio(loop_scope="module")


@dataclass
class Upstream:
    name: str
    fake: FakeUpstream
    provider: Provider


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def upstreams() -> AsyncIterator[dict[str, Upstream]]:
    async with fake_openai() as openai, fake_anthropic() as anthropic, fake_gigachat() as giga:
        providers: dict[str, Provider] = {
            "openai": OpenAIProvider(openai.api_key, openai.base_url),
            "anthropic": AnthropicProvider(anthropic.api_key, anthropic.base_url),
            "gigachat": GigaChatProvider(
                giga.auth_key, giga.scope, giga.base_url, giga.auth_url, verify_ssl=False
            ),
        }
        fakes: dict[str, FakeUpstream] = {
            "openai": openai,
            "anthropic": anthropic,
            "gigachat": giga,
        }
        try:
            yield {name: Upstream(name, fakes[name], providers[name]) for name in providers}
        finally:
            for provider in providers.values():
                await provider.aclose()


def reset(upstream: Upstream) -> Upstream:
    upstream.fake.reset()
    return upstream


@pytest_asyncio.fixture(loop_scope="module", params=["openai", "anthropic"])
async def with_tools(request: pytest.FixtureRequest, upstreams: dict[str, Upstream]) -> Upstream:
    """The upstreams that call tools."""
    return reset(upstreams[request.param])


@pytest_asyncio.fixture(loop_scope="module", params=["openai", "anthropic", "gigachat"])
async def upstream(request: pytest.FixtureRequest, upstreams: dict[str, Upstream]) -> Upstream:
    return reset(upstreams[request.param])


@pytest_asyncio.fixture(loop_scope="module")
async def openai_fake(upstreams: dict[str, Upstream]) -> OpenAIFake:
    fake = upstreams["openai"].fake
    assert isinstance(fake, OpenAIFake)
    fake.reset()
    return fake


@pytest_asyncio.fixture(loop_scope="module")
async def anthropic_fake(upstreams: dict[str, Upstream]) -> AnthropicFake:
    fake = upstreams["anthropic"].fake
    assert isinstance(fake, AnthropicFake)
    fake.reset()
    return fake


async def events_of(provider: Provider, request: ProviderRequest = ASK) -> list[StreamEvent]:
    return [event async for event in provider.stream(request)]


def calls_in(events: list[StreamEvent]) -> list[ToolCall]:
    """The tool calls the fragments add up to; each call's first fragment names it."""
    calls: dict[int, list[str]] = {}
    for event in events:
        if not isinstance(event, ToolCallDelta):
            continue
        if event.index not in calls:
            assert event.id, f"the first fragment of a call has no id: {event}"
            assert event.name, f"the first fragment of a call has no name: {event}"
            calls[event.index] = [event.id, event.name, event.arguments]
        else:
            assert (event.id, event.name) == (None, None), event
            calls[event.index][2] += event.arguments
    assert sorted(calls) == list(range(len(calls)))
    return [ToolCall(*calls[index]) for index in sorted(calls)]


def id_prefix(upstream: Upstream) -> str:
    return "call_" if upstream.name == "openai" else "toolu_"


# --- tool calls streamed back --------------------------------------------------------------


async def test_a_tool_call_streams_as_fragments_then_finish_then_usage(
    with_tools: Upstream,
) -> None:
    with_tools.fake.script(
        Scenario(
            text="",
            tool_calls=(("get_weather", PARIS),),
            tool_chunks=4,
            prompt_tokens=30,
            completion_tokens=12,
        )
    )

    events = await events_of(with_tools.provider)

    fragments = [e for e in events if isinstance(e, ToolCallDelta)]
    assert len(fragments) >= 4  # the arguments really came in pieces
    assert "".join(f.arguments for f in fragments) == PARIS
    [call] = calls_in(events)
    assert (call.name, call.arguments) == ("get_weather", PARIS)
    assert call.id.startswith(id_prefix(with_tools))
    assert not any(isinstance(e, TextDelta) for e in events)
    finish, usage = events[-2:]
    assert finish == Finish("tool_calls")
    assert isinstance(usage, Usage)
    assert (usage.prompt_tokens, usage.completion_tokens) == (30, 12)


async def test_text_then_several_tool_calls_keep_their_order(with_tools: Upstream) -> None:
    scripted = (("get_weather", PARIS), ("get_time", '{"tz": "Europe/Paris"}'))
    with_tools.fake.script(Scenario(text="Let me check.", chunks=2, tool_calls=scripted))

    events = await events_of(with_tools.provider)

    text = [e.text for e in events if isinstance(e, TextDelta)]
    assert "".join(text) == "Let me check."
    first_call = next(i for i, e in enumerate(events) if isinstance(e, ToolCallDelta))
    assert all(not isinstance(e, TextDelta) for e in events[first_call:])
    calls = calls_in(events)
    assert [(c.name, c.arguments) for c in calls] == list(scripted)
    assert len({c.id for c in calls}) == 2
    assert isinstance(events[-1], Usage)
    assert events[-2] == Finish("tool_calls")


async def test_a_finished_stream_says_why_once_before_usage(upstream: Upstream) -> None:
    upstream.fake.script(Scenario(text="Hi there.", prompt_tokens=5, completion_tokens=3))

    events = await events_of(upstream.provider, ASK_PLAIN)

    assert [e for e in events if isinstance(e, Finish)] == [Finish("stop")]
    finish, usage = events[-2:]
    assert finish == Finish("stop")
    assert isinstance(usage, Usage)
    assert (usage.prompt_tokens, usage.completion_tokens) == (5, 3)


@pytest.mark.parametrize(
    ("name", "reported", "reason"),
    [
        ("openai", "stop", "stop"),
        ("openai", "length", "length"),
        ("openai", "content_filter", "content_filter"),
        ("openai", "tool_calls", "tool_calls"),
        ("openai", "function_call", "tool_calls"),
        ("openai", "eos", "stop"),  # an OpenAI-compatible server's own reason
        ("anthropic", "end_turn", "stop"),
        ("anthropic", "stop_sequence", "stop"),
        ("anthropic", "max_tokens", "length"),
        ("anthropic", "model_context_window_exceeded", "length"),
        ("anthropic", "tool_use", "tool_calls"),
        ("anthropic", "refusal", "content_filter"),
        ("anthropic", "pause_turn", "stop"),
        ("gigachat", "stop", "stop"),
        ("gigachat", "length", "length"),
        ("gigachat", "blacklist", "content_filter"),
    ],
)
async def test_finish_reasons_are_mapped_to_openais(
    upstreams: dict[str, Upstream], name: str, reported: str, reason: str
) -> None:
    upstream = upstreams[name]
    upstream.fake.reset()
    upstream.fake.script(Scenario(text="Hi.", finish_reason=reported))

    events = await events_of(upstream.provider, ASK_PLAIN)

    assert [e for e in events if isinstance(e, Finish)] == [Finish(reason)]


# --- what is sent upstream -----------------------------------------------------------------

SECOND_TURN = ProviderRequest(
    model="test-model",
    messages=[
        ChatMessage("system", SYSTEM),
        ChatMessage("user", "Weather in Paris?", name="ana"),
        ChatMessage("assistant", "", tool_calls=(ToolCall("call_1", "get_weather", PARIS),)),
        ChatMessage("tool", '{"temp_c": 21}', tool_call_id="call_1"),
    ],
    max_tokens=64,
    tools=(WEATHER,),
    tool_choice="required",
    parallel_tool_calls=False,
    response_format={
        "type": "json_schema",
        "json_schema": {
            "name": "answer",
            "strict": True,
            "schema": {"type": "object", "properties": {"text": {"type": "string"}}},
        },
    },
    seed=7,
)


async def test_openai_gets_tool_calls_results_and_params_in_its_own_form(
    openai_fake: OpenAIFake, upstreams: dict[str, Upstream]
) -> None:
    events = await events_of(upstreams["openai"].provider, SECOND_TURN)

    assert Finish("stop") in events  # the fake accepted the tool message as an answer
    [sent] = openai_fake.chat_requests
    assert sent.json == {
        "model": "test-model",
        "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": "Weather in Paris?", "name": "ana"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": PARIS},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": '{"temp_c": 21}'},
        ],
        "max_tokens": 64,
        "tools": [WEATHER],
        "tool_choice": "required",
        "parallel_tool_calls": False,
        "response_format": SECOND_TURN.response_format,
        "seed": 7,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


async def test_openai_sends_an_assistants_text_beside_its_tool_calls(
    openai_fake: OpenAIFake, upstreams: dict[str, Upstream]
) -> None:
    call = ToolCall("call_9", "get_time", "{}")
    request = ProviderRequest(
        model="test-model",
        messages=[
            ChatMessage("user", "Time?"),
            ChatMessage("assistant", "Checking.", tool_calls=(call,)),
            ChatMessage("tool", "12:00", tool_call_id="call_9"),
        ],
        max_tokens=16,
        tool_choice={"type": "function", "function": {"name": "get_time"}},
        seed=0,
    )

    await events_of(upstreams["openai"].provider, request)

    body = openai_fake.chat_requests[0].json
    assert body["messages"][1]["content"] == "Checking."
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_time"}}
    assert body["seed"] == 0
    assert not {"tools", "parallel_tool_calls", "response_format"} & body.keys()


async def test_anthropic_gets_tool_use_and_tool_result_blocks(
    anthropic_fake: AnthropicFake, upstreams: dict[str, Upstream]
) -> None:
    rome = '{"city": "Rome"}'
    request = ProviderRequest(
        model="test-model",
        messages=[
            ChatMessage("system", SYSTEM),
            ChatMessage("user", "Weather in Paris and Rome?"),
            ChatMessage(
                "assistant",
                "Checking.",
                tool_calls=(
                    ToolCall("toolu_1", "get_weather", PARIS),
                    ToolCall("toolu_2", "get_weather", rome),
                ),
            ),
            ChatMessage("tool", "21", tool_call_id="toolu_1"),
            ChatMessage("tool", "24", tool_call_id="toolu_2"),
            ChatMessage("user", "In Fahrenheit, please."),
        ],
        max_tokens=64,
        tools=(WEATHER, CLOCK),
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        parallel_tool_calls=False,
    )

    events = await events_of(upstreams["anthropic"].provider, request)

    assert Finish("stop") in events  # the fake found every tool_use answered
    [sent] = anthropic_fake.chat_requests
    assert sent.json == {
        "model": "test-model",
        "system": SYSTEM,
        "messages": [
            {"role": "user", "content": "Weather in Paris and Rome?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Checking."},
                    {
                        "type": "tool_use",
                        "id": "toolu_1",
                        "name": "get_weather",
                        "input": {"city": "Paris"},
                    },
                    {
                        "type": "tool_use",
                        "id": "toolu_2",
                        "name": "get_weather",
                        "input": {"city": "Rome"},
                    },
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "21"},
                    {"type": "tool_result", "tool_use_id": "toolu_2", "content": "24"},
                    {"type": "text", "text": "In Fahrenheit, please."},
                ],
            },
        ],
        "max_tokens": 64,
        "tools": [
            {
                "name": "get_weather",
                "description": "Current weather in a city.",
                "input_schema": WEATHER_PARAMETERS,
            },
            {"name": "get_time", "input_schema": {"type": "object", "properties": {}}},
        ],
        "tool_choice": {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True},
        "stream": True,
    }


async def test_anthropic_sends_an_assistant_that_only_calls_tools_without_a_text_block(
    anthropic_fake: AnthropicFake, upstreams: dict[str, Upstream]
) -> None:
    request = ProviderRequest(
        model="test-model",
        messages=[
            ChatMessage("user", "Time?"),
            ChatMessage("assistant", "", tool_calls=(ToolCall("toolu_7", "get_time", ""),)),
            ChatMessage("tool", "12:00", tool_call_id="toolu_7"),
        ],
        max_tokens=16,
        tools=(CLOCK,),
    )

    await events_of(upstreams["anthropic"].provider, request)

    messages = anthropic_fake.chat_requests[0].json["messages"]
    assert messages[1:] == [
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "toolu_7", "name": "get_time", "input": {}}],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "toolu_7", "content": "12:00"}],
        },
    ]


@pytest.mark.parametrize(
    ("tool_choice", "parallel", "expected"),
    [
        ("auto", None, {"type": "auto"}),
        ("required", None, {"type": "any"}),
        ("none", None, {"type": "none"}),
        ("none", False, {"type": "none"}),
        (
            {"type": "function", "function": {"name": "get_time"}},
            None,
            {"type": "tool", "name": "get_time"},
        ),
        ("auto", False, {"type": "auto", "disable_parallel_tool_use": True}),
        ("required", False, {"type": "any", "disable_parallel_tool_use": True}),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        (None, True, None),
        (None, None, None),
    ],
)
async def test_anthropic_maps_tool_choice_and_parallel_tool_calls(
    anthropic_fake: AnthropicFake,
    upstreams: dict[str, Upstream],
    tool_choice: str | dict[str, Any] | None,
    parallel: bool | None,
    expected: dict[str, Any] | None,
) -> None:
    request = ProviderRequest(
        model="test-model",
        messages=[ChatMessage("user", "Time?")],
        max_tokens=16,
        tools=(CLOCK,),
        tool_choice=tool_choice,
        parallel_tool_calls=parallel,
    )

    await events_of(upstreams["anthropic"].provider, request)

    assert anthropic_fake.chat_requests[0].json.get("tool_choice") == expected


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"arguments": "{not json"}, "not valid JSON"),
        ({"arguments": "[1, 2]"}, "not a JSON object"),
        ({"tool_choice": "sometimes"}, "unknown tool_choice"),
        ({"tools": ({"type": "web_search"},)}, "only function tools"),
    ],
)
async def test_anthropic_refuses_what_it_cannot_express_before_calling(
    anthropic_fake: AnthropicFake,
    upstreams: dict[str, Upstream],
    change: dict[str, Any],
    says: str,
) -> None:
    call = ToolCall("toolu_1", "get_weather", change.get("arguments", PARIS))
    request = ProviderRequest(
        model="test-model",
        messages=[
            ChatMessage("user", "Weather?"),
            ChatMessage("assistant", "", tool_calls=(call,)),
            ChatMessage("tool", "21", tool_call_id="toolu_1"),
        ],
        max_tokens=16,
        tools=change.get("tools", (WEATHER,)),
        tool_choice=change.get("tool_choice"),
    )

    with pytest.raises(ProviderError) as caught:
        await events_of(upstreams["anthropic"].provider, request)

    assert caught.value.kind is ErrorKind.BAD_REQUEST
    assert says in caught.value.message
    assert anthropic_fake.chat_requests == []


@pytest.mark.parametrize("name", ["openai", "anthropic"])
async def test_a_tool_message_without_its_call_id_is_refused_before_calling(
    upstreams: dict[str, Upstream], name: str
) -> None:
    upstream = upstreams[name]
    upstream.fake.reset()
    request = ProviderRequest(
        model="test-model",
        messages=[ChatMessage("user", "Hi"), ChatMessage("tool", "orphan")],
        max_tokens=16,
    )

    with pytest.raises(ProviderError) as caught:
        await events_of(upstream.provider, request)

    assert caught.value.kind is ErrorKind.BAD_REQUEST
    assert upstream.fake.chat_requests == []


@pytest.mark.parametrize("name", ["openai", "anthropic"])
async def test_the_fakes_refuse_a_tool_call_left_unanswered(
    upstreams: dict[str, Upstream], name: str
) -> None:
    upstream = upstreams[name]
    upstream.fake.reset()
    request = ProviderRequest(
        model="test-model",
        messages=[
            ChatMessage("user", "Weather?"),
            ChatMessage("assistant", "", tool_calls=(ToolCall("id_1", "get_weather", PARIS),)),
            ChatMessage("user", "Never mind."),
        ],
        max_tokens=16,
    )

    with pytest.raises(ProviderError) as caught:
        await events_of(upstream.provider, request)

    assert caught.value.kind is ErrorKind.BAD_REQUEST
    assert caught.value.status == 400


# --- OpenAI-compatible servers' tool-call fragments, as raw bytes ----------------------------


class RawStreams:
    """An OpenAI-compatible endpoint sending exactly the frames a test scripts."""

    def __init__(self) -> None:
        self.bodies: list[list[Frame]] = []
        self.app = Starlette(routes=[Route("/v1/chat/completions", self._chat, methods=["POST"])])

    async def _chat(self, request: Request) -> Response:
        await request.body()
        frames = self.bodies.pop(0)
        return ScriptedStream(frames, abort=frames[-1].data != DONE)


@asynccontextmanager
async def raw_openai(*bodies: list[Frame]) -> AsyncIterator[OpenAIProvider]:
    streams = RawStreams()
    streams.bodies.extend(bodies)
    async with serve_asgi(streams.app) as server:
        provider = OpenAIProvider("sk-raw-0123456789abcdef", server.base_url + "/v1")
        try:
            yield provider
        finally:
            await provider.aclose()


def delta(**fields: Any) -> Frame:
    return Frame(f"data: {json.dumps({'choices': [{'index': 0, 'delta': fields}]})}\n\n".encode())


FINISH_TOOLS = Frame(
    b'data: {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}\n\n'
)
DONE = b"data: [DONE]\n\n"


async def test_openai_normalizes_what_compatible_servers_send() -> None:
    body = [
        # no index; later fragments repeat the id and name; the second call has no id
        delta(tool_calls=[{"id": "abc", "function": {"name": "f", "arguments": '{"a"'}}]),
        delta(
            tool_calls=[{"index": 0, "id": "abc", "function": {"name": "f", "arguments": ": 1}"}}]
        ),
        delta(tool_calls=[{"index": 1, "function": {"name": "g", "arguments": {"b": 2}}}]),
        FINISH_TOOLS,
        Frame(DONE),
    ]
    async with raw_openai(body) as provider:
        events = await events_of(provider, ASK)

    assert events[:2] == [
        ToolCallDelta(0, "abc", "f", '{"a"'),
        ToolCallDelta(0, None, None, ": 1}"),
    ]
    second = events[2]
    assert isinstance(second, ToolCallDelta)
    assert (second.index, second.name, second.arguments) == (1, "g", '{"b":2}')
    assert second.id is not None
    assert second.id.startswith("call_")  # made up, as the server sent none
    assert events[3:] == [Finish("tool_calls")]  # no usage reported: none yielded


async def test_a_stream_cut_after_a_tool_call_started_is_a_cut() -> None:
    body = [
        delta(tool_calls=[{"index": 0, "id": "c1", "function": {"name": "f", "arguments": "{"}}])
    ]
    async with raw_openai(body) as provider:
        seen: list[StreamEvent] = []
        stream = provider.stream(ASK)
        seen.append(await anext(stream))
        with pytest.raises(ProviderError) as caught:
            await anext(stream)

    assert seen == [ToolCallDelta(0, "c1", "f", "{")]
    assert caught.value.kind is ErrorKind.STREAM_CUT
    assert not caught.value.retryable


# --- the mock ------------------------------------------------------------------------------


async def test_the_mock_finishes_with_stop_or_at_its_token_limit() -> None:
    mock = MockProvider(delay_seconds=0)

    full = await events_of(mock, ProviderRequest("mock", ASK_PLAIN.messages, max_tokens=1000))
    short = await events_of(mock, ProviderRequest("mock", ASK_PLAIN.messages, max_tokens=3))

    assert [type(e) for e in full[-2:]] == [Finish, Usage]
    assert full[-2] == Finish("stop")
    assert [type(e) for e in short[-2:]] == [Finish, Usage]
    assert short[-2] == Finish("length")
