"""Traces: OpenTelemetry over OTLP/HTTP, on only when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set.

``setup_tracing(endpoint)`` returns None when it is not, and then nothing of OpenTelemetry
is imported or run: no SDK, no exporter, no instrumentation, no span. When it is, it builds
a ``TracerProvider`` (``service.name`` from ``OTEL_SERVICE_NAME``, default ``llm-gateway``)
whose ``BatchSpanProcessor`` sends to an ``OTLPSpanExporter``, which reads the standard
``OTEL_EXPORTER_OTLP_*`` variables itself (endpoint, headers, timeout, compression), as the
processor reads ``OTEL_BSP_*``. The provider is passed to whatever records spans (the ASGI
middleware, the Strawberry extension, SQLAlchemy's and Redis's instrumentation,
``GenerationSpans``), never installed globally, so several apps may live in one process.

No span attribute carries message content or a secret: GraphQL arguments are kept only
when their name is on ``GRAPHQL_ARGUMENTS`` (ids, page sizes, model names), the query text
is left out, SQL is traced with its placeholders and Redis commands with their arguments
replaced by ``?``. This module imports none of the layers.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Tracer
    from redis.asyncio import Redis
    from sqlalchemy.ext.asyncio import AsyncEngine
    from starlette.middleware import Middleware

DEFAULT_SERVICE_NAME = "llm-gateway"
INSTRUMENTATION_NAME = "llm_gateway"

GRAPHQL_ARGUMENTS = frozenset(
    {
        "id",
        "dialogId",
        "messageId",
        "modelId",
        "agentId",
        "userId",
        "keyId",
        "model",
        "first",
        "last",
        "after",
        "before",
        "status",
    }
)
"""GraphQL argument names whose values may appear on a span; the rest are dropped (content,
system prompts, setting values, keys, passwords, tokens: anything a client writes)."""


def setup_tracing(endpoint: str | None) -> TracerProvider | None:
    """The process's tracer provider, or None (tracing off) without an OTLP endpoint
    (``Settings.otel_exporter_otlp_endpoint``)."""
    if not endpoint:
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import OTELResourceDetector, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    # OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, when set, win over the default name.
    resource = Resource.create({"service.name": DEFAULT_SERVICE_NAME}).merge(
        OTELResourceDetector().detect()
    )
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


@contextlib.contextmanager
def instrument_storage(
    provider: TracerProvider, engine: AsyncEngine, redis: Redis | None
) -> Iterator[None]:
    """Trace the engine's statements and the Redis client's commands until the block ends."""
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    sql = SQLAlchemyInstrumentor()
    # Its declared range stops before SQLAlchemy 2.1, whose cursor events it uses unchanged.
    sql.instrument(engine=engine.sync_engine, tracer_provider=provider, skip_dep_check=True)
    if redis is not None:
        RedisInstrumentor.instrument_client(redis, tracer_provider=provider)
    try:
        yield
    finally:
        sql.uninstrument()
        if redis is not None:
            RedisInstrumentor.uninstrument_client(redis)


async def flush_tracing(provider: TracerProvider) -> None:
    """Send the spans still buffered (at the lifespan's end). The provider itself shuts
    down at the process's exit, so an app whose lifespan runs again keeps tracing."""
    await asyncio.to_thread(provider.force_flush)


def asgi_middleware(provider: TracerProvider) -> Middleware:
    """The ASGI middleware that makes each HTTP request a server span (continuing the
    caller's ``traceparent``). Without the per-message send/receive spans: a stream would
    get one per chunk; without the health checks."""
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
    from starlette.middleware import Middleware

    return Middleware(
        OpenTelemetryMiddleware,
        tracer_provider=provider,
        exclude_spans=["receive", "send"],
        excluded_urls="healthz,readyz",
    )


def graphql_arguments(arguments: dict[str, Any], info: Any) -> dict[str, Any]:
    """The Strawberry extension's ``arg_filter``: whitelisted names only, also nested."""
    return _kept(arguments)


def _kept(arguments: dict[str, Any]) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    for name, value in arguments.items():
        if isinstance(value, dict):
            inner = _kept(value)
            if inner:
                kept[name] = inner
        elif name in GRAPHQL_ARGUMENTS and isinstance(value, str | int | bool | None):
            kept[name] = value
    return kept


@dataclass(slots=True)
class GenerationRecord:
    """What a generation reports for its span, filled in as it ends."""

    attributes: dict[str, Any] = field(default_factory=dict)

    def ended(
        self,
        *,
        response_model: str,
        provider: str,
        input_tokens: int | None,
        output_tokens: int | None,
        finish_reason: str | None,
        cache_read_tokens: int | None = None,
        cache_write_tokens: int | None = None,
    ) -> None:
        """``input_tokens`` counts every input token, the cache's reads and writes too."""
        values: dict[str, Any] = {
            "gen_ai.response.model": response_model,
            "gen_ai.provider.name": provider,
            "gen_ai.usage.input_tokens": input_tokens,
            "gen_ai.usage.output_tokens": output_tokens,
            "gen_ai.usage.cache_read.input_tokens": cache_read_tokens,
            "gen_ai.usage.cache_creation.input_tokens": cache_write_tokens,
            "gen_ai.response.finish_reasons": [finish_reason] if finish_reason else None,
        }
        self.attributes.update((k, v) for k, v in values.items() if v is not None)


class GenerationSpans:
    """One ``chat {model}`` client span per generation (GenAI semantic conventions),
    a child of whatever span is current (the request that started it); a no-op without a
    provider."""

    def __init__(self, provider: TracerProvider | None = None) -> None:
        self._tracer: Tracer | None = (
            provider.get_tracer(INSTRUMENTATION_NAME) if provider is not None else None
        )

    @contextlib.contextmanager
    def generation(
        self, model: str, provider: str, conversation_id: str | None
    ) -> Iterator[GenerationRecord]:
        record = GenerationRecord()
        if self._tracer is None:
            yield record
            return
        from opentelemetry.trace import SpanKind

        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": model,
            "gen_ai.provider.name": provider,
        }
        if conversation_id is not None:
            attributes["gen_ai.conversation.id"] = conversation_id
        with self._tracer.start_as_current_span(
            f"chat {model}", kind=SpanKind.CLIENT, attributes=attributes
        ) as span:
            try:
                yield record
            finally:
                span.set_attributes(record.attributes)
