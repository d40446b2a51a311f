"""Fake upstream providers on 127.0.0.1 that speak each wire protocol, for tests and benchmarks.

    async with fake_openai() as fake:
        fake.script(Scenario(status=429, retry_after_ms=1), Scenario(cut_after=2))
        provider = OpenAIProvider(fake.api_key, fake.base_url)
        ...
        assert fake.chat_requests[-1].json["max_tokens"] == 64

Every fake records each request it receives (``fake.requests``) and answers chat requests
from a queue of ``Scenario`` objects (``fake.default`` once the queue is empty).
"""

from tests.fakes.anthropic_fake import DEFAULT_ANTHROPIC_KEY, AnthropicFake, fake_anthropic
from tests.fakes.base import DEFAULT_REPLY, Cut, FakeUpstream, RecordedRequest, Scenario
from tests.fakes.gigachat_fake import (
    DEFAULT_GIGACHAT_AUTH_KEY,
    DEFAULT_GIGACHAT_SCOPE,
    GigaChatFake,
    fake_gigachat,
)
from tests.fakes.openai_fake import DEFAULT_OPENAI_KEY, OpenAIFake, fake_openai

__all__ = [
    "DEFAULT_ANTHROPIC_KEY",
    "DEFAULT_GIGACHAT_AUTH_KEY",
    "DEFAULT_GIGACHAT_SCOPE",
    "DEFAULT_OPENAI_KEY",
    "DEFAULT_REPLY",
    "AnthropicFake",
    "Cut",
    "FakeUpstream",
    "GigaChatFake",
    "OpenAIFake",
    "RecordedRequest",
    "Scenario",
    "fake_anthropic",
    "fake_gigachat",
    "fake_openai",
]
