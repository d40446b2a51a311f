"""With tracing on, every HTTP request a provider SDK sends is a CLIENT span under the current
span (the generation's), covering the whole stream, with no key or content on it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from llm_gateway.observability.http_spans import traced_transport
from llm_gateway.providers.anthropic import AnthropicProvider
from llm_gateway.providers.base import ChatMessage, ProviderError, ProviderRequest, TextDelta
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

SECRET_CONTENT = "A message nobody may read in a trace"
REQUEST = ProviderRequest(
    model="test-model", messages=[ChatMessage("user", SECRET_CONTENT)], max_tokens=32
)


@pytest.fixture
def spans() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


@pytest.fixture
async def upstreams() -> AsyncIterator[tuple[OpenAIFake, AnthropicFake]]:
    async with fake_openai() as openai, fake_anthropic() as anthropic:
        yield openai, anthropic


def _flat(span: ReadableSpan) -> str:
    return f"{span.name} {dict(span.attributes or {})}"


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_each_provider_request_is_a_client_span_under_the_generation(
    spans: tuple[TracerProvider, InMemorySpanExporter],
    upstreams: tuple[OpenAIFake, AnthropicFake],
    kind: str,
) -> None:
    provider, exporter = spans
    wrap = traced_transport(provider)
    fake = upstreams[0] if kind == "openai" else upstreams[1]
    fake.script(Scenario(text="One two three", chunks=3), Scenario(status=503))
    adapter = (
        OpenAIProvider(DEFAULT_OPENAI_KEY, fake.base_url, wrap_transport=wrap)
        if kind == "openai"
        else AnthropicProvider(DEFAULT_ANTHROPIC_KEY, fake.base_url, wrap_transport=wrap)
    )
    tracer = provider.get_tracer("test")
    try:
        with tracer.start_as_current_span("chat test-model") as parent:
            text = [e.text async for e in adapter.stream(REQUEST) if isinstance(e, TextDelta)]
            with pytest.raises(ProviderError):
                _ = [e async for e in adapter.stream(REQUEST)]
    finally:
        await adapter.aclose()
    assert "".join(text) == "One two three"
    http = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.CLIENT]
    assert [s.name for s in http] == ["POST", "POST"]
    ok, failed = http
    for span in http:
        assert span.parent is not None
        assert span.parent.span_id == parent.get_span_context().span_id
        assert span.attributes is not None
        assert str(span.attributes["url.full"]).startswith(fake.url)
        assert span.attributes["server.address"] == "127.0.0.1"
    assert ok.attributes is not None
    assert ok.attributes["http.response.status_code"] == 200
    assert ok.end_time is not None  # ended once the stream was read to its end
    assert failed.attributes is not None
    assert failed.attributes["http.response.status_code"] == 503
    assert failed.status.status_code is StatusCode.ERROR
    everything = " ".join(_flat(s) for s in exporter.get_finished_spans())
    assert SECRET_CONTENT not in everything
    key = DEFAULT_OPENAI_KEY if kind == "openai" else DEFAULT_ANTHROPIC_KEY
    assert key not in everything
