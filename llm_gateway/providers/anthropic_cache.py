"""Prompt caching on Anthropic: where the adapter puts cache breakpoints, and what the
stream's usage says about them (README: prompt caching).

Anthropic caches only what a request marks: a ``cache_control`` breakpoint on a block
caches the prompt up to and including it (tools, then the system prompt, then the
messages), and a later request that starts with the same prefix reads it at a tenth of
the price; writing costs a quarter more than plain input. The gateway marks, within
Anthropic's limit of four:

1. the system prompt: dialogs of one agent (and a history the prompt window shortened
   from the front) share it;
2. the history before the newest user turn: an edited question (a new branch) or a
   retried request starts with it;
3. the whole prompt: the next turn of the conversation, and a regenerated answer, start
   with it.

A breakpoint whose prefix is shorter than the model's minimum cacheable length is left
out (Anthropic would not cache it anyway), so a short prompt is sent exactly as before.
The lengths are the gateway's own generous count (``tokens.count_text``); counting stops
as soon as the minimum is reached, so a long history costs no more than a short one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

import anthropic
from anthropic.types import MessageParam, TextBlockParam

from llm_gateway.enums import Provider
from llm_gateway.providers.base import ProviderRequest, Usage
from llm_gateway.providers.tokens import count_text

MAX_BREAKPOINTS = 4
"""Anthropic refuses a request with more ``cache_control`` blocks than this."""
DEFAULT_MINIMUM = 1024
"""Sonnet and Opus up to 4.1 (and, until Anthropic says otherwise, any newer family)."""
MINIMUMS = (("opus-4-5", 4096), ("opus-4-6", 4096), ("haiku-4-5", 4096), ("haiku", 2048))
"""Anthropic's minimum cacheable prompt length per model family: the first part of the
model id that matches wins (``haiku`` alone: Claude 3 and 3.5 Haiku)."""

System = str | list[TextBlockParam] | anthropic.Omit


def minimum_cacheable(model: str) -> int:
    """The fewest prompt tokens ``model`` caches, by its upstream id."""
    for family, minimum in MINIMUMS:
        if family in model:
            return minimum
    return DEFAULT_MINIMUM


def with_breakpoints(
    request: ProviderRequest, messages: list[MessageParam]
) -> tuple[System, list[MessageParam]]:
    """The system prompt and messages to send, with ``cache_control`` where it pays.

    ``messages`` are the request's turns as the Messages API takes them; the ones marked
    are copied, never changed in place.
    """
    system = request.system
    # Cache prefix order: tools, system, then each message (segment 2 + i).
    candidates: list[int] = []
    if system:
        candidates.append(1)
    if len(messages) >= 2:
        candidates.append(len(messages))  # the history before the newest turn
    if messages:
        candidates.append(len(messages) + 1)  # the whole prompt
    reached = _segment_reaching(request, messages, minimum_cacheable(request.model))
    marked = [c for c in candidates if reached is not None and c >= reached][:MAX_BREAKPOINTS]
    if not marked:
        return (system if system is not None else anthropic.omit), messages
    sent = list(messages)
    for segment in marked:
        if segment >= 2:
            sent[segment - 2] = _marked(sent[segment - 2])
    if system and 1 in marked:
        block: TextBlockParam = {"type": "text", "text": system, "cache_control": _control()}
        return [block], sent
    return (system if system is not None else anthropic.omit), sent


def _segment_reaching(
    request: ProviderRequest, messages: list[MessageParam], minimum: int
) -> int | None:
    """The first segment at which the prompt so far reaches ``minimum`` tokens, if any."""
    total = 0
    for index, text in enumerate(_segments(request, messages)):
        if text:
            total += count_text(text, Provider.ANTHROPIC)
        if total >= minimum:
            return index
    return None


def _segments(request: ProviderRequest, messages: list[MessageParam]) -> Iterator[str]:
    yield json.dumps(list(request.tools), ensure_ascii=False) if request.tools else ""
    yield request.system or ""
    for message in messages:
        content = message["content"]
        yield content if isinstance(content, str) else json.dumps(list(content), default=str)


def _marked(message: MessageParam) -> MessageParam:
    """``message`` with a breakpoint on its last block (a plain text becomes one block)."""
    content = message["content"]
    if isinstance(content, str):
        if not content:
            return message  # an empty text block cannot carry a breakpoint
        blocks: list[Any] = [{"type": "text", "text": content}]
    else:
        blocks = list(content)
        if not blocks or not isinstance(blocks[-1], dict):
            return message
    blocks[-1] = {**blocks[-1], "cache_control": _control()}  # any block type takes one
    return cast(MessageParam, {**message, "content": blocks})


def _control() -> Any:
    return {"type": "ephemeral"}


@dataclass(slots=True)
class StreamUsage:
    """The usage a stream reports, read as Anthropic sends it: ``message_start`` carries
    the input counts, ``message_delta`` cumulative totals that replace each count it
    carries. Anthropic's ``input_tokens`` excludes the tokens read from or written to the
    cache; ``usage()`` adds them back, so its ``prompt_tokens`` counts every input token.
    """

    input_tokens: int | None = None
    cache_write_tokens: int = 0
    cache_read_tokens: int = 0
    output_tokens: int | None = None
    thinking_tokens: int | None = None

    def started(self, usage: Any) -> None:
        """``message_start``: its output count is a placeholder, not the answer's."""
        self._inputs(usage)

    def delta(self, usage: Any) -> None:
        self._inputs(usage)
        self.output_tokens = usage.output_tokens
        details = getattr(usage, "output_tokens_details", None)
        if details is not None:  # with extended thinking on
            self.thinking_tokens = details.thinking_tokens

    def _inputs(self, usage: Any) -> None:
        if getattr(usage, "input_tokens", None) is not None:
            self.input_tokens = usage.input_tokens
        written = getattr(usage, "cache_creation_input_tokens", None)
        if written is not None:
            self.cache_write_tokens = written
        read = getattr(usage, "cache_read_input_tokens", None)
        if read is not None:
            self.cache_read_tokens = read

    def usage(self) -> Usage | None:
        """The normalised usage, or None when the stream did not report it."""
        if self.input_tokens is None or self.output_tokens is None:
            return None
        return Usage(
            self.input_tokens + self.cache_write_tokens + self.cache_read_tokens,
            self.output_tokens,
            cache_read_tokens=self.cache_read_tokens,
            cache_write_tokens=self.cache_write_tokens,
            reasoning_tokens=self.thinking_tokens,
        )
