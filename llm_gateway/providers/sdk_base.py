"""What the adapters over an official SDK (OpenAI, Anthropic) share.

Both SDKs take the same client options, are closed the same way and fail with the same
three families of exception before their own API errors: a timeout, a connection that
failed, undecodable JSON. An adapter names its SDK's exceptions and maps only its API
errors; this base builds the client (one attempt per call: ``max_retries=0``), guards the
stream and classifies the rest. GigaChat talks plain httpx, so it is not one of these.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import ClassVar, Generic, Protocol, Required, TypedDict, TypeVar

import httpx2

from llm_gateway.providers.base import ErrorKind, ProviderError, ProviderRequest, StreamEvent
from llm_gateway.providers.errors import guarded, upstream_error

TransportWrapper = Callable[[httpx2.AsyncBaseTransport], httpx2.AsyncBaseTransport]
"""Wraps the HTTP transport under an SDK client (tracing gives each request a span)."""
CONNECTION_LIMITS = httpx2.Limits(max_connections=1000, max_keepalive_connections=100)
"""The SDKs' own defaults, for a client the adapter builds itself."""


class ClientOptions(TypedDict, total=False):
    """The constructor arguments both SDK clients take, as the adapters set them."""

    api_key: Required[str]
    base_url: Required[str | None]
    max_retries: Required[int]
    timeout: Required[httpx2.Timeout]
    http_client: httpx2.AsyncClient


class SdkClient(Protocol):
    def is_closed(self) -> bool: ...

    async def close(self) -> None: ...


ClientT = TypeVar("ClientT", bound=SdkClient)


class SdkProvider(Generic[ClientT]):
    """An adapter over an SDK client; a subclass supplies the client and the stream."""

    name: str  # set by each subclass; an attribute, as the Provider protocol reads it
    label: ClassVar[str]  # how errors name the provider to a user
    # Checked in this order, before the API errors: the SDKs' timeout errors are
    # connection errors too.
    timeout_errors: ClassVar[tuple[type[Exception], ...]]
    connection_errors: ClassVar[tuple[type[Exception], ...]]

    def __init__(
        self,
        api_key: str,
        base_url: str | None = None,
        *,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
        wrap_transport: TransportWrapper | None = None,
    ) -> None:
        self._api_key = api_key
        timeout = httpx2.Timeout(read_timeout, connect=connect_timeout)
        options = ClientOptions(api_key=api_key, base_url=base_url, max_retries=0, timeout=timeout)
        if wrap_transport is not None:  # else the SDK builds its own client, as always
            transport = httpx2.AsyncHTTPTransport(limits=CONNECTION_LIMITS)
            options["http_client"] = httpx2.AsyncClient(
                transport=wrap_transport(transport), timeout=timeout, follow_redirects=True
            )
        self._client = self._open_client(options)

    def _open_client(self, options: ClientOptions) -> ClientT:
        raise NotImplementedError

    def _events(self, request: ProviderRequest) -> AsyncGenerator[StreamEvent, None]:
        raise NotImplementedError

    def _classify_api_error(self, exc: Exception, secrets: tuple[str, ...]) -> ProviderError | None:
        """The SDK's own API errors (statuses, errors inside the stream); None otherwise."""
        raise NotImplementedError

    def stream(self, request: ProviderRequest) -> AsyncIterator[StreamEvent]:
        return guarded(self.label, self._events(request), self._classify)

    async def aclose(self) -> None:
        await self._client.close()

    def _check_open(self) -> None:
        """Refuse a request after shutdown rather than let the SDK reopen a transport."""
        if self._client.is_closed():
            raise upstream_error(self.label, ErrorKind.UNAVAILABLE, "the provider was shut down")

    def _unfinished(self) -> ProviderError:
        return upstream_error(
            self.label, ErrorKind.UNAVAILABLE, "the stream ended without finishing"
        )

    def _classify(self, exc: Exception) -> ProviderError | None:
        if isinstance(exc, self.timeout_errors):
            return upstream_error(self.label, ErrorKind.TIMEOUT)
        if isinstance(exc, self.connection_errors):
            return upstream_error(self.label, ErrorKind.UNAVAILABLE, "connection failed")
        found = self._classify_api_error(exc, (self._api_key,))
        if found is not None:
            return found
        if isinstance(exc, ValueError):  # undecodable JSON in the stream
            return upstream_error(self.label, ErrorKind.UNAVAILABLE, "malformed response")
        return None
