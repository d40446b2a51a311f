"""Which OpenAI chat-completions parameters each provider can honour.

Requests are expressed in OpenAI's vocabulary; ``unsupported_params`` names the parameters
of one request that a provider's adapter cannot carry, so the caller can refuse the request
(naming them) before any money is held or any upstream is called. A parameter left ``None``
is never listed, and neither is a value every provider honours trivially: an empty tool
list, ``tool_choice="none"``, ``response_format={"type": "text"}``.
"""

from __future__ import annotations

import json
from typing import Any

from llm_gateway.enums import Provider
from llm_gateway.providers.base import ProviderRequest

_ANTHROPIC_TOOL_CHOICES = frozenset({"auto", "required", "none"})


def unsupported_params(provider: str, request: ProviderRequest) -> list[str]:
    """The OpenAI parameter names ``provider`` cannot honour for ``request``, in a fixed order.

    ``"messages"`` is listed when the context holds a tool call or tool result the provider
    cannot express. Unknown providers honour nothing beyond plain chat.
    """
    if provider == Provider.OPENAI:
        return []
    if provider == Provider.ANTHROPIC:
        return _anthropic(request)
    return _plain_chat_only(request)


def _anthropic(request: ProviderRequest) -> list[str]:
    unsupported: list[str] = []
    # tool_use takes the arguments as an object, not as JSON text
    if any(not _is_json_object(c.arguments) for m in request.messages for c in m.tool_calls):
        unsupported.append("messages")
    if request.tools and not all(_is_function_tool(tool) for tool in request.tools):
        unsupported.append("tools")
    if request.tool_choice is not None and not _anthropic_tool_choice(request.tool_choice):
        unsupported.append("tool_choice")
    if not _is_text_format(request.response_format):
        unsupported.append("response_format")
    if request.seed is not None:
        unsupported.append("seed")
    return unsupported


def _plain_chat_only(request: ProviderRequest) -> list[str]:
    """GigaChat and the mock: no tools, no structured output, no seed."""
    unsupported: list[str] = []
    if any(m.role == "tool" or m.tool_calls for m in request.messages):
        unsupported.append("messages")
    if request.tools:
        unsupported.append("tools")
    if request.tool_choice is not None and request.tool_choice != "none":
        unsupported.append("tool_choice")
    if request.parallel_tool_calls is not None and request.tools:
        unsupported.append("parallel_tool_calls")  # without tools it asks for nothing
    if not _is_text_format(request.response_format):
        unsupported.append("response_format")
    if request.seed is not None:
        unsupported.append("seed")
    return unsupported


def _is_text_format(response_format: dict[str, Any] | None) -> bool:
    return response_format is None or response_format.get("type") == "text"


def _is_function_tool(tool: dict[str, Any]) -> bool:
    function = tool.get("function")
    return (
        tool.get("type") == "function"
        and isinstance(function, dict)
        and isinstance(function.get("name"), str)
    )


def _anthropic_tool_choice(choice: str | dict[str, Any]) -> bool:
    if isinstance(choice, str):
        return choice in _ANTHROPIC_TOOL_CHOICES
    function = choice.get("function")
    return (
        choice.get("type") == "function"
        and isinstance(function, dict)
        and isinstance(function.get("name"), str)
    )


def _is_json_object(arguments: str) -> bool:
    """Whether Anthropic can take these arguments as a ``tool_use`` input ("" counts as {})."""
    if not arguments.strip():
        return True
    try:
        return isinstance(json.loads(arguments), dict)
    except ValueError:
        return False
