"""What each provider can honour of an OpenAI request, and what a request costs in tokens."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from llm_gateway.enums import Provider
from llm_gateway.providers.base import ChatMessage, ProviderRequest, ToolCall
from llm_gateway.providers.capabilities import unsupported_params
from llm_gateway.providers.tokens import count_messages, count_request, count_text

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "The city's name."}},
            "required": ["city"],
        },
    },
}
PLAIN = ProviderRequest(
    model="m",
    messages=[
        ChatMessage("system", "You are terse."),
        ChatMessage("user", "Hi"),
        ChatMessage("assistant", "Hello."),
        ChatMessage("user", "Weather in Paris?"),
    ],
    max_tokens=64,
    temperature=0.5,
    stop=["END"],
)
TOOL_TURN = [
    ChatMessage("user", "Weather in Paris?"),
    ChatMessage("assistant", "", tool_calls=(ToolCall("call_1", "get_weather", '{"city":"P"}'),)),
    ChatMessage("tool", "21", tool_call_id="call_1"),
]
JSON_SCHEMA = {"type": "json_schema", "json_schema": {"name": "a", "schema": {"type": "object"}}}
EVERYTHING = dataclasses.replace(
    PLAIN,
    messages=TOOL_TURN,
    tools=(WEATHER,),
    tool_choice="required",
    parallel_tool_calls=False,
    response_format=JSON_SCHEMA,
    seed=7,
)


def ask(**changes: Any) -> ProviderRequest:
    return dataclasses.replace(PLAIN, **changes)


# --- unsupported_params --------------------------------------------------------------------


@pytest.mark.parametrize("provider", list(Provider))
def test_a_plain_chat_is_supported_everywhere(provider: Provider) -> None:
    assert unsupported_params(provider, PLAIN) == []
    assert unsupported_params(provider, ask(response_format={"type": "text"})) == []


def test_openai_honours_everything() -> None:
    assert unsupported_params("openai", EVERYTHING) == []


def test_anthropic_honours_tools_but_not_seed_or_json_output() -> None:
    assert unsupported_params("anthropic", EVERYTHING) == ["response_format", "seed"]
    tools_only = dataclasses.replace(EVERYTHING, response_format=None, seed=None)
    assert unsupported_params("anthropic", tools_only) == []
    assert unsupported_params("anthropic", ask(response_format={"type": "json_object"})) == [
        "response_format"
    ]


@pytest.mark.parametrize(
    ("changes", "unsupported"),
    [
        ({"tool_choice": {"type": "function", "function": {"name": "get_weather"}}}, []),
        ({"tool_choice": "none"}, []),
        ({"tool_choice": {"type": "allowed_tools", "allowed_tools": {}}}, ["tool_choice"]),
        ({"tools": ({"type": "custom", "custom": {"name": "x"}},)}, ["tools"]),
        (
            {"messages": [ChatMessage("assistant", "", tool_calls=(ToolCall("c", "f", "[1]"),))]},
            ["messages"],
        ),
        ({"messages": [ChatMessage("assistant", "", tool_calls=(ToolCall("c", "f", ""),))]}, []),
    ],
)
def test_anthropic_refuses_what_it_cannot_express(
    changes: dict[str, Any], unsupported: list[str]
) -> None:
    assert unsupported_params("anthropic", ask(**{"tools": (WEATHER,), **changes})) == unsupported


@pytest.mark.parametrize("provider", ["gigachat", "mock"])
def test_gigachat_and_the_mock_do_plain_chat_only(provider: str) -> None:
    assert unsupported_params(provider, EVERYTHING) == [
        "messages",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "response_format",
        "seed",
    ]
    assert unsupported_params(provider, ask(messages=TOOL_TURN)) == ["messages"]
    assert unsupported_params(provider, ask(seed=0)) == ["seed"]
    assert unsupported_params(provider, ask(tool_choice="required")) == ["tool_choice"]


@pytest.mark.parametrize("provider", ["gigachat", "mock"])
def test_what_asks_for_nothing_is_not_refused(provider: str) -> None:
    vacuous = ask(tools=(), tool_choice="none", parallel_tool_calls=True)
    assert unsupported_params(provider, vacuous) == []


# --- count_request -------------------------------------------------------------------------


@pytest.mark.parametrize("provider", list(Provider))
def test_a_plain_request_counts_as_its_messages(provider: Provider) -> None:
    assert count_request(PLAIN, provider) == count_messages(PLAIN.messages, provider)
    with_params = ask(tool_choice="none", seed=3, response_format={"type": "json_object"})
    assert count_request(with_params, provider) == count_messages(PLAIN.messages, provider)


@pytest.mark.parametrize("provider", list(Provider))
def test_tools_and_tool_calls_add_at_least_their_text(provider: Provider) -> None:
    base = count_request(PLAIN, provider)
    tools = count_request(ask(tools=(WEATHER,)), provider)
    assert tools >= base + count_text(json.dumps(WEATHER, separators=(",", ":")), provider)
    assert count_request(ask(tools=(WEATHER, WEATHER)), provider) > tools

    turn = count_request(ask(messages=TOOL_TURN), provider)
    as_text = count_messages(TOOL_TURN, provider)
    call = TOOL_TURN[1].tool_calls[0]
    assert turn >= as_text + sum(count_text(t, provider) for t in (call.name, call.arguments))

    schema = count_request(ask(response_format=JSON_SCHEMA), provider)
    assert schema > base


def test_openai_counts_tool_definitions_generously() -> None:
    """The JSON of a tool costs more than OpenAI's own rendering of it (a TypeScript-like
    declaration with the descriptions as comments), so the estimate errs on the high side."""
    rendered = (
        "# Tools\n\n## functions\n\nnamespace functions {\n\n"
        "// Current weather in a city.\ntype get_weather = (_: {\n"
        "// The city's name.\ncity: string,\n}) => any;\n\n} // namespace functions"
    )
    added = count_request(ask(tools=(WEATHER,)), "openai") - count_request(PLAIN, "openai")
    assert added >= count_text(rendered, "openai")
