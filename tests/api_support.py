"""Helpers for the OpenAI-compatible API's tests: a live gateway in front of the fakes,
keys made through the service, the official ``openai`` SDK pointed at the gateway, and
the request records read back."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import openai
from sqlalchemy import select

from llm_gateway.db.models import ApiRequest, TokenTransaction
from llm_gateway.services.money import api_keys
from llm_gateway.settings import Settings
from tests.conftest import make_settings
from tests.factories import database_of
from tests.fakes import (
    DEFAULT_ANTHROPIC_KEY,
    DEFAULT_OPENAI_KEY,
    AnthropicFake,
    OpenAIFake,
    fake_anthropic,
    fake_openai,
)
from tests.live import LiveServer


@dataclass(frozen=True)
class Upstreams:
    openai: OpenAIFake
    anthropic: AnthropicFake


@asynccontextmanager
async def upstreams() -> AsyncIterator[Upstreams]:
    async with fake_openai() as openai_fake, fake_anthropic() as anthropic_fake:
        yield Upstreams(openai_fake, anthropic_fake)


def api_settings(database_url: str, fakes: Upstreams, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "openai_api_key": DEFAULT_OPENAI_KEY,
        "openai_base_url": fakes.openai.base_url,
        "anthropic_api_key": DEFAULT_ANTHROPIC_KEY,
        "anthropic_base_url": fakes.anthropic.base_url,
        "provider_retry_base_seconds": 0.01,
        **overrides,
    }
    return make_settings(database_url, **values)


async def new_key(app: Any, user: int = 7, **fields: Any) -> str:
    async with database_of(app).transaction() as session:
        raw, _ = await api_keys.create_api_key(
            session, user, name=fields.pop("name", "test"), **fields
        )
    return raw


def sdk(server: LiveServer, key: str, **options: Any) -> openai.AsyncOpenAI:
    """The official SDK as a user would configure it (its own retries left at the default
    unless a test says otherwise)."""
    return openai.AsyncOpenAI(base_url=f"{server.base_url}/v1", api_key=key, **options)


async def api_requests(app: Any, user: int = 7) -> list[ApiRequest]:
    async with database_of(app).read() as session:
        rows = await session.scalars(
            select(ApiRequest).where(ApiRequest.user_id == user).order_by(ApiRequest.created_at)
        )
        return list(rows)


async def usage_rows_of(app: Any, request_id: uuid.UUID) -> list[TokenTransaction]:
    async with database_of(app).read() as session:
        rows = await session.scalars(
            select(TokenTransaction).where(TokenTransaction.api_request_id == request_id)
        )
        return list(rows)
