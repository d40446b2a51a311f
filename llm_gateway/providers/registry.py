"""Provider adapters by name, built from the current credentials.

Credentials come from settings, overridden by staff settings (``system_config``) without
a restart: when they change, the next request gets a new adapter and the old one is
closed once nothing uses it any more.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, fields
from typing import Any

from llm_gateway import enums
from llm_gateway.providers.base import ErrorKind, Provider, ProviderError
from llm_gateway.providers.mock import MockProvider
from llm_gateway.providers.sdk_base import TransportWrapper


@dataclass(frozen=True, slots=True)
class Credentials:
    """Everything an adapter needs to reach its provider."""

    openai_api_key: str | None = None
    openai_base_url: str | None = None
    anthropic_api_key: str | None = None
    anthropic_base_url: str | None = None
    gigachat_auth_key: str | None = None
    gigachat_scope: str = "GIGACHAT_API_PERS"
    gigachat_base_url: str = "https://gigachat.devices.sberbank.ru/api/v1"
    gigachat_auth_url: str = "https://ngw.devices.sberbank.ru:9443/api/v2/oauth"
    gigachat_verify_ssl: bool = True

    def replace(self, **changes: Any) -> Credentials:
        known = {f.name for f in fields(self)}
        return Credentials(**{**{k: getattr(self, k) for k in known}, **changes})


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect: float = 5.0
    read: float = 60.0


CredentialSource = Callable[[], Awaitable[Credentials]]


def _missing(what: str) -> ProviderError:
    return ProviderError(ErrorKind.AUTH, f"No {what} is configured for this provider.")


def build_provider(
    name: str,
    credentials: Credentials,
    timeouts: Timeouts,
    wrap_transport: TransportWrapper | None = None,
) -> Provider:
    if name == enums.Provider.MOCK:
        return MockProvider()
    if name == enums.Provider.OPENAI:
        from llm_gateway.providers.openai import OpenAIProvider

        # OpenAI-compatible local servers (vLLM, Ollama, llama.cpp) take any key.
        if not credentials.openai_api_key and not credentials.openai_base_url:
            raise _missing("OPENAI_API_KEY")
        return OpenAIProvider(
            credentials.openai_api_key or "not-needed",
            credentials.openai_base_url,
            connect_timeout=timeouts.connect,
            read_timeout=timeouts.read,
            wrap_transport=wrap_transport,
        )
    if name == enums.Provider.ANTHROPIC:
        from llm_gateway.providers.anthropic import AnthropicProvider

        if not credentials.anthropic_api_key:
            raise _missing("ANTHROPIC_API_KEY")
        return AnthropicProvider(
            credentials.anthropic_api_key,
            credentials.anthropic_base_url,
            connect_timeout=timeouts.connect,
            read_timeout=timeouts.read,
            wrap_transport=wrap_transport,
        )
    if name == enums.Provider.GIGACHAT:
        from llm_gateway.providers.gigachat import GigaChatProvider

        if not credentials.gigachat_auth_key:
            raise _missing("GIGACHAT_AUTH_KEY")
        return GigaChatProvider(
            credentials.gigachat_auth_key,
            credentials.gigachat_scope,
            credentials.gigachat_base_url,
            credentials.gigachat_auth_url,
            verify_ssl=credentials.gigachat_verify_ssl,
            connect_timeout=timeouts.connect,
            read_timeout=timeouts.read,
        )
    raise ProviderError(ErrorKind.BAD_REQUEST, f"Unknown provider {name!r}.")


class ProviderRegistry:
    """Hands out one adapter per provider for the current credentials."""

    def __init__(
        self,
        source: CredentialSource,
        timeouts: Timeouts,
        wrap_transport: TransportWrapper | None = None,
    ) -> None:
        self._source = source
        self._timeouts = timeouts
        self._wrap_transport = wrap_transport  # tracing: a span per provider request
        self._adapters: dict[str, tuple[Credentials, Provider]] = {}
        self._retired: list[Provider] = []
        self._lock = asyncio.Lock()

    async def get(self, name: str) -> Provider:
        credentials = await self._source()
        async with self._lock:
            current = self._adapters.get(name)
            if current is not None and current[0] == credentials:
                return current[1]
            adapter = build_provider(name, credentials, self._timeouts, self._wrap_transport)
            if current is not None:
                self._retired.append(current[1])
            self._adapters[name] = (credentials, adapter)
            return adapter

    async def aclose(self) -> None:
        async with self._lock:
            adapters = [a for _, a in self._adapters.values()] + self._retired
            self._adapters.clear()
            self._retired.clear()
        for adapter in adapters:
            await adapter.aclose()
