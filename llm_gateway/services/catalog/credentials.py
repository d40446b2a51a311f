"""Where provider credentials come from: settings, overridden by staff settings."""

from __future__ import annotations

from llm_gateway.providers.registry import Credentials
from llm_gateway.settings import Settings


def _secret(value: object) -> str | None:
    getter = getattr(value, "get_secret_value", None)
    return getter() if getter is not None else None


def settings_credentials(settings: Settings) -> Credentials:
    return Credentials(
        openai_api_key=_secret(settings.openai_api_key),
        openai_base_url=settings.openai_base_url,
        anthropic_api_key=_secret(settings.anthropic_api_key),
        anthropic_base_url=settings.anthropic_base_url,
        gigachat_auth_key=_secret(settings.gigachat_auth_key),
        gigachat_scope=settings.gigachat_scope,
        gigachat_base_url=settings.gigachat_base_url,
        gigachat_auth_url=settings.gigachat_auth_url,
        gigachat_verify_ssl=settings.gigachat_verify_ssl,
    )
