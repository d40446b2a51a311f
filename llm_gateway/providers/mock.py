"""The built-in ``mock`` provider: a deterministic streamed reply, no key, no network.

It lets a fresh install chat at once. The reply quotes the last user message, so a
newcomer can see the round trip; usage is counted the same way the gateway estimates it.
It never calls tools (``capabilities.unsupported_params`` refuses them for it).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from llm_gateway.enums import Provider
from llm_gateway.providers.base import Finish, ProviderRequest, StreamEvent, TextDelta, Usage
from llm_gateway.providers.tokens import estimate_tokens

WORD_DELAY_SECONDS = 0.02


class MockProvider:
    name: str = Provider.MOCK

    def __init__(self, *, delay_seconds: float = WORD_DELAY_SECONDS) -> None:
        self._delay = delay_seconds

    @staticmethod
    def reply_to(request: ProviderRequest) -> str:
        last = next((m.content for m in reversed(request.turns) if m.role == "user"), "")
        quoted = " ".join(last.split()[:40])
        return (
            f"This is the built-in mock model. You said: “{quoted}”. "
            "Configure a provider key and pick a real model to get real answers."
        )

    async def stream(self, request: ProviderRequest) -> AsyncIterator[StreamEvent]:
        words = self.reply_to(request).split(" ")
        produced: list[str] = []
        reason = "stop"
        for index, word in enumerate(words):
            if estimate_tokens(" ".join([*produced, word])) > request.max_tokens:
                reason = "length"
                break
            produced.append(word)
            await asyncio.sleep(self._delay)
            yield TextDelta(word if index == 0 else " " + word)
        yield Finish(reason)
        prompt = sum(estimate_tokens(m.content) + 4 for m in request.messages) + 3
        yield Usage(prompt_tokens=prompt, completion_tokens=estimate_tokens(" ".join(produced)))

    async def aclose(self) -> None:
        return None
