"""Gateway API keys: the caller's own, and every user's for staff."""

from __future__ import annotations

from typing import Annotated

import strawberry

from llm_gateway.schema.context import Info
from llm_gateway.schema.money.api_keys import (
    ApiKeyType,
    CreateApiKeyInput,
    CreateApiKeyPayload,
    RevokeApiKeyInput,
)
from llm_gateway.schema.pagination import Connection
from llm_gateway.schema.scalars import SafeInt
from llm_gateway.services.money import api_keys


async def api_key_list(info: Info) -> list[ApiKeyType]:
    """The caller's API keys, newest first (the newest 500), revoked ones included."""
    ctx = info.context
    async with ctx.services.db.read() as session:
        rows = await api_keys.list_api_keys(session, ctx.principal.user_id)
    return [ApiKeyType.from_row(row) for row in rows]


async def create_api_key(info: Info, input: CreateApiKeyInput) -> CreateApiKeyPayload:
    """A new API key for /v1; the key is in this answer only."""
    ctx = info.context
    async with ctx.services.db.transaction() as session:
        key, row = await api_keys.create_api_key(
            session,
            ctx.principal.user_id,
            name=input.name,
            expires_at=input.expires_at,
            models=input.models,
            daily_token_limit=input.daily_token_limit,
        )
    return CreateApiKeyPayload(key=key, api_key=ApiKeyType.from_row(row))


async def revoke_api_key(info: Info, input: RevokeApiKeyInput) -> ApiKeyType:
    """Revoke one of your keys at once, on every instance (staff: anyone's, audited).
    Revoking a revoked key changes nothing."""
    ctx = info.context
    principal = ctx.principal
    async with ctx.services.db.transaction() as session:
        row = await api_keys.revoke_api_key(
            session,
            input.id,
            user_id=principal.user_id,
            actor=ctx.actor() if principal.is_staff else None,
            broker=ctx.services.broker,
            forget=ctx.services.api_keys.forget,
        )
    return ApiKeyType.from_row(row)


async def all_api_keys(
    info: Info,
    user_id: Annotated[
        SafeInt | None, strawberry.argument(description="Whose keys; null: every user's.")
    ] = None,
    first: int | None = None,
    after: str | None = None,
) -> Connection[ApiKeyType]:
    """Every user's API keys, newest first, revoked ones included (staff)."""
    ctx = info.context
    async with ctx.services.db.read() as session:
        page = await api_keys.all_api_keys(
            session,
            user_id=user_id,
            first=first,
            after=after,
            max_page_size=ctx.services.settings.graphql_max_page_size,
        )
    return Connection.of(page, ApiKeyType.from_row)
