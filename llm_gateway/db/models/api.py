"""The OpenAI-compatible API's records: gateway API keys and one row per ``/v1`` request."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Index,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from llm_gateway.db.base import Base, CreatedAt, one_of
from llm_gateway.enums import MessageStatus


class ApiKey(CreatedAt, Base):
    """A key that acts as its user on ``/v1``; only the SHA-256 of the key is kept.

    ``models`` (public names) restricts what it may call when set; ``daily_token_limit``
    caps what it may spend per UTC day on top of its user's own limits.
    """

    __tablename__ = "api_keys"
    __table_args__ = (
        CheckConstraint(
            "daily_token_limit IS NULL OR daily_token_limit >= 0", name="daily_limit_positive"
        ),
        Index("ix_api_keys_user_created", "user_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[int] = mapped_column(BigInteger)
    name: Mapped[str] = mapped_column(String(100))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    last_four: Mapped[str] = mapped_column(String(4))
    models: Mapped[list[str] | None] = mapped_column(JSON)
    expires_at: Mapped[dt.datetime | None]
    daily_token_limit: Mapped[int | None] = mapped_column(BigInteger)
    last_used_at: Mapped[dt.datetime | None]
    revoked_at: Mapped[dt.datetime | None]
    revoked_by: Mapped[int | None] = mapped_column(BigInteger)


class ApiRequest(CreatedAt, Base):
    """One ``/v1/chat/completions`` request: who, which key and model, what it cost, how it
    ended. Content is kept only for idempotent replay or when content logging is on."""

    __tablename__ = "api_requests"
    __table_args__ = (
        CheckConstraint(one_of("status", MessageStatus), name="status"),
        UniqueConstraint("user_id", "idempotency_key", name="uq_api_requests_user_idempotency_key"),
        Index("ix_api_requests_created", "created_at"),
        Index("ix_api_requests_user_created", "user_id", "created_at"),
        Index("ix_api_requests_key_created", "api_key_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[int] = mapped_column(BigInteger)
    api_key_id: Mapped[uuid.UUID | None]
    model_name: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16), default=MessageStatus.STREAMING)
    stream: Mapped[bool] = mapped_column(default=False)
    prompt_tokens: Mapped[int | None]
    completion_tokens: Mapped[int | None]
    cache_read_tokens: Mapped[int | None]  # parts of the two above (README: prompt caching)
    cache_write_tokens: Mapped[int | None]
    reasoning_tokens: Mapped[int | None]
    charged_tokens: Mapped[int | None] = mapped_column(BigInteger)
    cost_usd: Mapped[Decimal | None] = mapped_column(Numeric(16, 8))
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    ttft_ms: Mapped[int | None]
    total_ms: Mapped[int | None]
    idempotency_key: Mapped[str | None] = mapped_column(String(128))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    request_body: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    response: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    completed_at: Mapped[dt.datetime | None]
