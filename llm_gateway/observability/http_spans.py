"""A client span for every HTTP request the provider SDKs send (OpenTelemetry's httpx
instrumentation does not hook ``httpx2``, the HTTP client the SDKs ship with).

``traced_transport(provider)`` returns a function that wraps an ``httpx2`` transport: each
request gets a ``{METHOD}`` CLIENT span, a child of the current span (the generation's),
with the method, the URL without its query, the server and the response status; for a
streamed response the span ends when the body is closed, so it covers the whole stream.
Headers (API keys) and bodies (messages) never reach a span. Used only when tracing is on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

import httpx2

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span, Tracer

TransportWrapper = Callable[[httpx2.AsyncBaseTransport], httpx2.AsyncBaseTransport]


def traced_transport(provider: TracerProvider) -> TransportWrapper:
    tracer = provider.get_tracer("llm_gateway.providers")

    def wrap(inner: httpx2.AsyncBaseTransport) -> httpx2.AsyncBaseTransport:
        return _TracedTransport(inner, tracer)

    return wrap


class _TracedTransport(httpx2.AsyncBaseTransport):
    def __init__(self, inner: httpx2.AsyncBaseTransport, tracer: Tracer) -> None:
        self._inner = inner
        self._tracer = tracer

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        from opentelemetry.trace import SpanKind, Status, StatusCode

        url = request.url
        span = self._tracer.start_span(
            request.method,
            kind=SpanKind.CLIENT,
            attributes={
                "http.request.method": request.method,
                "url.full": str(url.copy_with(query=None, fragment=None)),
                "server.address": url.host,
                "server.port": url.port or (443 if url.scheme == "https" else 80),
            },
        )
        try:
            response = await self._inner.handle_async_request(request)
        except BaseException as exc:
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            span.end()
            raise
        span.set_attribute("http.response.status_code", response.status_code)
        if response.status_code >= 400:
            span.set_status(Status(StatusCode.ERROR))
        response.stream = _EndsSpan(response.stream, span)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


class _EndsSpan(httpx2.AsyncByteStream):
    """The response body, ending the request's span once it is read or closed."""

    def __init__(self, inner: object, span: Span) -> None:
        self._inner = inner
        self._span = span
        self._ended = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for part in self._inner:  # type: ignore[attr-defined]
            yield part

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()  # type: ignore[attr-defined]
        finally:
            if not self._ended:
                self._ended = True
                self._span.end()
