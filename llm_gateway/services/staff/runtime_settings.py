"""Runtime settings staff change without a restart (``system_config``).

Values marked secret are encrypted at rest with Fernet (key: ``CONFIG_ENCRYPTION_KEY``, or
one derived from ``DJANGO_SECRET_KEY`` when it is not set) and are never given back in
clear: every read path shows a mask such as ``sk-…9f2c``. Known keys override the
environment (provider keys and URLs, the default model, the initial balance, limits).
"""

from __future__ import annotations

import base64
import hashlib
import logging
from dataclasses import dataclass
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from llm_gateway.db.base import utcnow
from llm_gateway.db.models import SystemConfig
from llm_gateway.errors import NotFound, ValidationFailed
from llm_gateway.providers.registry import Credentials
from llm_gateway.services.plumbing import config_notices
from llm_gateway.services.plumbing.broker import Broker
from llm_gateway.services.plumbing.config_notices import Refresh
from llm_gateway.services.plumbing.config_notices import watch as watch
from llm_gateway.services.staff import audit
from llm_gateway.settings import Settings

logger = logging.getLogger("llm_gateway.config")

MAX_KEY_LENGTH = 100
MAX_VALUE_LENGTH = 10_000


@dataclass(frozen=True, slots=True)
class KnownKey:
    description: str
    secret: bool
    field: str | None = None  # the Credentials field it overrides
    minimum: int | None = None  # set for whole-number limits


KNOWN_KEYS: dict[str, KnownKey] = {
    "OPENAI_API_KEY": KnownKey("OpenAI (or compatible) API key", True, "openai_api_key"),
    "OPENAI_BASE_URL": KnownKey("OpenAI-compatible base URL", False, "openai_base_url"),
    "ANTHROPIC_API_KEY": KnownKey("Anthropic API key", True, "anthropic_api_key"),
    "ANTHROPIC_BASE_URL": KnownKey("Anthropic base URL", False, "anthropic_base_url"),
    "GIGACHAT_AUTH_KEY": KnownKey("GigaChat authorization key", True, "gigachat_auth_key"),
    "GIGACHAT_SCOPE": KnownKey("GigaChat OAuth scope", False, "gigachat_scope"),
    "GIGACHAT_BASE_URL": KnownKey("GigaChat API base URL", False, "gigachat_base_url"),
    "GIGACHAT_AUTH_URL": KnownKey("GigaChat OAuth URL", False, "gigachat_auth_url"),
    "GIGACHAT_VERIFY_SSL": KnownKey(
        "Verify GigaChat's TLS certificate", False, "gigachat_verify_ssl"
    ),
    "INITIAL_TOKEN_BALANCE": KnownKey("Tokens granted to a new user", False, minimum=0),
    "MAX_CONTENT_LENGTH": KnownKey("Characters in a message or system prompt", False, minimum=1),
    "RATE_LIMIT_REQUESTS": KnownKey("Sends per user per window (0: off)", False, minimum=0),
    "RATE_LIMIT_WINDOW": KnownKey("Rate limit window in seconds", False, minimum=1),
}


class Cipher:
    """Fernet over the configured key (or one derived from the Django secret)."""

    def __init__(self, settings: Settings) -> None:
        if settings.config_encryption_key is not None:
            key = settings.config_encryption_key.get_secret_value().encode()
        else:
            digest = hashlib.sha256(
                b"llm-gateway/system_config/" + settings.jwt_secret().encode()
            ).digest()
            key = base64.urlsafe_b64encode(digest)
        self._fernet = Fernet(key)

    def encrypt(self, value: str) -> str:
        return self._fernet.encrypt(value.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise ValidationFailed(
                "A secret setting cannot be decrypted with the current key."
            ) from None


def _whole_number(key: str, value: str, minimum: int) -> int:
    text = value.strip()
    if not text.isdigit() or int(text) < minimum or int(text) > 10**12:
        raise ValidationFailed(f"{key} takes a whole number of at least {minimum}.", field="value")
    return int(text)


@dataclass(slots=True)
class Limits:
    """Limits staff may change at runtime; every instance refreshes them on a change."""

    initial_balance: int
    max_content_length: int
    rate_limit_requests: int
    rate_limit_window: int

    @staticmethod
    def of(settings: Settings, values: dict[str, str]) -> Limits:
        def pick(key: str, default: int) -> int:
            raw = values.get(key)
            known = KNOWN_KEYS[key]
            if raw is None or known.minimum is None:
                return default
            try:
                return _whole_number(key, raw, known.minimum)
            except ValidationFailed:
                logger.error("ignoring the invalid runtime setting %s", key)
                return default

        return Limits(
            initial_balance=pick("INITIAL_TOKEN_BALANCE", settings.initial_token_balance),
            max_content_length=pick("MAX_CONTENT_LENGTH", settings.max_content_length),
            rate_limit_requests=pick("RATE_LIMIT_REQUESTS", settings.rate_limit_requests),
            rate_limit_window=pick("RATE_LIMIT_WINDOW", settings.rate_limit_window),
        )


def mask(value: str) -> str:
    """Enough to recognise a secret, never enough to use it: ``sk-…9f2c``."""
    if len(value) <= 8:
        return "••••"
    return f"{value[:3]}…{value[-4:]}"


@dataclass(frozen=True, slots=True)
class ConfigView:
    key: str
    value: str  # masked when secret
    is_secret: bool
    description: str
    updated_by: int | None
    updated_at: Any


def _view(row: SystemConfig, cipher: Cipher) -> ConfigView:
    shown = mask(cipher.decrypt(row.value)) if row.is_secret else row.value
    return ConfigView(
        row.key, shown, row.is_secret, row.description, row.updated_by, row.updated_at
    )


async def list_config(session: AsyncSession, cipher: Cipher) -> list[ConfigView]:
    rows = await session.scalars(select(SystemConfig).order_by(SystemConfig.key))
    return [_view(row, cipher) for row in rows]


async def set_config(
    session: AsyncSession,
    actor: audit.Actor,
    cipher: Cipher,
    key: str,
    value: str,
    *,
    secret: bool | None = None,
    description: str | None = None,
    broker: Broker | None = None,
    refresh: Refresh | None = None,
) -> ConfigView:
    """Set ``key``; once committed, every instance follows (``config_notices``)."""
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH or not key.replace("_", "").isalnum():
        raise ValidationFailed(
            "key takes letters, digits and underscores (at most 100).", field="key"
        )
    if len(value) > MAX_VALUE_LENGTH:
        raise ValidationFailed("value is too long.", field="value")
    known = KNOWN_KEYS.get(key.upper())
    if known is not None:
        key = key.upper()
        if secret is False and known.secret:
            raise ValidationFailed(f"{key} is always secret.", field="secret")
    if known is not None and known.minimum is not None:
        _whole_number(key, value, known.minimum)
    is_secret = bool(secret) or (known is not None and known.secret)
    row = await session.get(SystemConfig, key, with_for_update=True)
    before = None if row is None else {"value": _view(row, cipher).value, "secret": row.is_secret}
    stored = cipher.encrypt(value) if is_secret else value
    if row is None:
        row = SystemConfig(key=key, value=stored, is_secret=is_secret, description="")
        session.add(row)
    row.value = stored
    row.is_secret = is_secret
    row.description = (
        description
        if description is not None
        else (row.description or (known.description if known else ""))
    )
    row.updated_by = actor.user_id
    row.updated_at = utcnow()
    await session.flush()
    view = _view(row, cipher)
    await audit.record(
        session,
        actor,
        "config.set",
        "system_config",
        key,
        before=before,
        after={"value": view.value, "secret": is_secret},
    )
    config_notices.after_change(session, broker, key, refresh=refresh)
    return view


async def delete_config(
    session: AsyncSession,
    actor: audit.Actor,
    cipher: Cipher,
    key: str,
    *,
    broker: Broker | None = None,
    refresh: Refresh | None = None,
) -> ConfigView:
    """Remove ``key``; once committed, every instance follows (``config_notices``)."""
    row = await session.get(SystemConfig, key, with_for_update=True)
    if row is None:
        raise NotFound(f"No setting {key!r}.", key=key)
    view = _view(row, cipher)
    await session.delete(row)
    await session.flush()
    await audit.record(
        session,
        actor,
        "config.delete",
        "system_config",
        key,
        before={"value": view.value, "secret": row.is_secret},
    )
    config_notices.after_change(session, broker, view.key, refresh=refresh)
    return view


async def overrides(session: AsyncSession, cipher: Cipher) -> dict[str, str]:
    """Known keys set by staff, decrypted, for building credentials."""
    rows = await session.scalars(select(SystemConfig).where(SystemConfig.key.in_(list(KNOWN_KEYS))))
    return {row.key: cipher.decrypt(row.value) if row.is_secret else row.value for row in rows}


def apply_overrides(base: Credentials, values: dict[str, str]) -> Credentials:
    changes: dict[str, Any] = {}
    for key, value in values.items():
        field = KNOWN_KEYS[key].field
        if field is None:
            continue
        if field == "gigachat_verify_ssl":
            changes[field] = value.strip().lower() not in ("0", "false", "no", "off")
        else:
            changes[field] = value or None
    return base.replace(**changes)
