"""Tool calls through ``/v1`` end to end, streamed and not, on an OpenAI-type and an
Anthropic model: the SDK sees OpenAI's tool calls, and the follow-up turn with the tool's
result reaches each upstream in its own protocol."""

from __future__ import annotations

import json
from typing import Any

import pytest
from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam

from tests.api_support import Upstreams, api_requests, api_settings, new_key, sdk
from tests.chat_support import assert_exact
from tests.fakes import Scenario
from tests.live import LiveServer, live_server

pytestmark = pytest.mark.postgres_only

WEATHER: ChatCompletionToolParam = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
ARGUMENTS = '{"city": "Paris"}'
QUESTION: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Weather in Paris?"}]


@pytest.mark.parametrize("model", ["gpt-4-turbo", "claude-3-sonnet"])
@pytest.mark.parametrize("stream", [False, True])
async def test_a_tool_call_round_trip(
    server: LiveServer, fakes: Upstreams, model: str, stream: bool
) -> None:
    fake = fakes.openai if model.startswith("gpt") else fakes.anthropic
    fake.script(
        Scenario(text="", tool_calls=(("get_weather", ARGUMENTS),), completion_tokens=12),
        Scenario(text="It is sunny in Paris."),
    )
    key = await new_key(server.app)
    async with sdk(server, key) as client:
        call_id, name, arguments, finish = await _ask(
            client, model, QUESTION, stream=stream, tool_choice="required"
        )
        assert (name, json.loads(arguments), finish) == (
            "get_weather",
            {"city": "Paris"},
            "tool_calls",
        )
        follow_up: list[ChatCompletionMessageParam] = [
            *QUESTION,
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": call_id,
                        "type": "function",
                        "function": {"name": name, "arguments": arguments},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": call_id, "content": '{"sky": "sunny"}'},
        ]
        answer = await client.chat.completions.create(
            model=model, messages=follow_up, tools=[WEATHER]
        )
    assert answer.choices[0].message.content == "It is sunny in Paris."
    first, second = (r.json for r in fake.chat_requests)
    if model.startswith("gpt"):
        assert first["tools"] == [WEATHER]
        assert first["tool_choice"] == "required"
        assert second["messages"][1]["tool_calls"][0]["id"] == call_id
        assert second["messages"][2] == {
            "role": "tool",
            "tool_call_id": call_id,
            "content": '{"sky": "sunny"}',
        }
    else:
        assert first["tools"][0]["input_schema"] == WEATHER["function"]["parameters"]
        assert first["tool_choice"] == {"type": "any"}
        assistant, result = second["messages"][1], second["messages"][2]
        assert assistant["content"] == [
            {"type": "tool_use", "id": call_id, "name": "get_weather", "input": {"city": "Paris"}}
        ]
        assert result["role"] == "user"
        assert result["content"][0]["type"] == "tool_result"
        assert result["content"][0]["tool_use_id"] == call_id
    records = await api_requests(server.app)
    assert [r.status for r in records] == ["complete", "complete"]
    assert records[0].charged_tokens
    assert records[0].completion_tokens == 12
    await assert_exact(server.app)


async def _ask(
    client: Any,
    model: str,
    messages: list[ChatCompletionMessageParam],
    *,
    stream: bool,
    **params: Any,
) -> tuple[str, str, str, str | None]:
    """The one tool call an answer makes: (id, name, arguments, finish reason)."""
    if not stream:
        answer = await client.chat.completions.create(
            model=model, messages=messages, tools=[WEATHER], **params
        )
        (call,) = answer.choices[0].message.tool_calls
        assert answer.choices[0].message.content is None
        return call.id, call.function.name, call.function.arguments, answer.choices[0].finish_reason
    chunks = await client.chat.completions.create(
        model=model, messages=messages, tools=[WEATHER], stream=True, **params
    )
    call_id, name, pieces, finish = "", "", [], None
    async for chunk in chunks:
        for choice in chunk.choices:
            for fragment in choice.delta.tool_calls or ():
                assert fragment.index == 0
                call_id = fragment.id or call_id
                name = (fragment.function.name if fragment.function else None) or name
                pieces.append((fragment.function.arguments if fragment.function else None) or "")
            finish = choice.finish_reason or finish
    assert len([p for p in pieces if p]) > 1  # the arguments arrive in fragments
    return call_id, name, "".join(pieces), finish


async def test_a_model_that_cannot_call_tools_refuses_them_by_name(
    database_url: str, fakes: Upstreams
) -> None:
    async with live_server(api_settings(database_url, fakes)) as server:
        key = await new_key(server.app)
        import openai

        async with sdk(server, key) as client:
            with pytest.raises(openai.BadRequestError) as refused:
                await client.chat.completions.create(
                    model="mock", messages=QUESTION, tools=[WEATHER]
                )
    assert refused.value.param == "tools"
