"""Gateway API keys: the key's record as clients see it (never the key), and the inputs."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import TYPE_CHECKING

import strawberry

from llm_gateway.schema.scalars import SafeInt

if TYPE_CHECKING:
    from llm_gateway.db import models as db


@strawberry.type(
    name="ApiKey",
    description="A key for the OpenAI-compatible API at /v1. The key itself is shown only "
    "once, by createApiKey; this is its record.",
)
class ApiKeyType:
    id: uuid.UUID
    user_id: SafeInt = strawberry.field(description="The user the key acts as.")
    name: str
    prefix: str = strawberry.field(description="The key's first characters, e.g. sk-lg-AbCd.")
    last_four: str = strawberry.field(description="The key's last four characters.")
    models: list[str] | None = strawberry.field(
        description="The only models the key may call; null: every model its user may."
    )
    expires_at: dt.datetime | None = strawberry.field(description="Null: never expires.")
    daily_token_limit: SafeInt | None = strawberry.field(
        description="Tokens the key may spend per day, on top of its user's own limits; "
        "null: only the user's limits."
    )
    last_used_at: dt.datetime | None = strawberry.field(
        description="Recorded every few seconds, not on each request."
    )
    created_at: dt.datetime
    revoked_at: dt.datetime | None = strawberry.field(description="Null: not revoked.")

    @staticmethod
    def from_row(row: db.ApiKey) -> ApiKeyType:
        return ApiKeyType(
            id=row.id,
            user_id=row.user_id,
            name=row.name,
            prefix=row.prefix,
            last_four=row.last_four,
            models=list(row.models) if row.models is not None else None,
            expires_at=row.expires_at,
            daily_token_limit=row.daily_token_limit,
            last_used_at=row.last_used_at,
            created_at=row.created_at,
            revoked_at=row.revoked_at,
        )


@strawberry.type
class CreateApiKeyPayload:
    key: str = strawberry.field(
        description="The key, shown only here and never again: send it as "
        "'Authorization: Bearer <key>'."
    )
    api_key: ApiKeyType


@strawberry.input
class CreateApiKeyInput:
    name: str = strawberry.field(description="1 to 100 characters, to recognise the key by.")
    expires_at: dt.datetime | None = strawberry.field(
        default=None, description="When the key stops working (in the future); null: never."
    )
    models: list[str] | None = strawberry.field(
        default=None, description="Model names the key may call; null: every model."
    )
    daily_token_limit: SafeInt | None = strawberry.field(
        default=None, description="Tokens per day, on top of your own limits; null: none."
    )


@strawberry.input
class RevokeApiKeyInput:
    id: uuid.UUID
