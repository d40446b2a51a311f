"""Dialogs and their messages."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from llm_gateway.db.base import Base, CreatedAt, Timestamps, one_of
from llm_gateway.enums import MessageStatus, Role

ASSISTANT_ROWS = f"role = '{Role.ASSISTANT.value}'"
USAGE_COLUMNS = [
    "user_id",
    "model_name",
    "status",
    "prompt_tokens",
    "completion_tokens",
    "charged_tokens",
    "cost_usd",
    "total_ms",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
]


class Dialog(Timestamps, Base):
    """A conversation owned by one user; ``updated_at`` moves with every message."""

    __tablename__ = "dialogs"
    __table_args__ = (
        Index("ix_dialogs_owner_activity", "user_id", "updated_at", "id"),
        Index("ix_dialogs_created_id", "created_at", "id"),  # staff: allDialogs
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[int] = mapped_column(BigInteger)
    title: Mapped[str | None] = mapped_column(String(255))
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="RESTRICT"), index=True)
    agent_id: Mapped[int | None] = mapped_column(
        ForeignKey("agents.id", ondelete="SET NULL"), index=True
    )
    system_prompt: Mapped[str | None] = mapped_column(Text)
    temperature: Mapped[float | None]
    top_p: Mapped[float | None]
    max_tokens: Mapped[int | None]
    stop: Mapped[list[str] | None] = mapped_column(JSON)
    deleted_at: Mapped[dt.datetime | None]
    # The newest message of the branch the user is on (README: branches). No foreign key:
    # messages reference dialogs already; deleting a message moves the leaf in the service.
    active_leaf_id: Mapped[uuid.UUID | None]


class Message(CreatedAt, Base):
    """One turn of a dialog; an assistant message carries its generation's outcome.

    Messages form a tree: ``parent_id`` is the previous message on the same branch (None
    for the first message). An edited question is a sibling of the original (same
    parent), a regenerated answer a sibling of the earlier answers; a child is always
    written after its parent, so a branch read by ``created_at`` is in order.
    """

    __tablename__ = "messages"
    __table_args__ = (
        CheckConstraint(one_of("role", Role), name="role"),
        CheckConstraint(one_of("status", MessageStatus), name="status"),
        UniqueConstraint("user_id", "idempotency_key", name="uq_messages_user_idempotency_key"),
        Index("ix_messages_dialog_created", "dialog_id", "created_at", "id"),
        Index("ix_messages_status", "status"),
        # Staff usage statistics: assistant rows by time. On PostgreSQL the index also
        # carries every column the statistics read, so they never touch the wide rows.
        Index(
            "ix_messages_assistant_created",
            "created_at",
            postgresql_where=text(ASSISTANT_ROWS),
            sqlite_where=text(ASSISTANT_ROWS),
            postgresql_include=USAGE_COLUMNS,
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    dialog_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("dialogs.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(BigInteger)
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default=MessageStatus.COMPLETE)
    model_name: Mapped[str | None] = mapped_column(String(100))
    prompt_tokens: Mapped[int | None]
    completion_tokens: Mapped[int | None]
    # Parts of the two above (README: prompt caching): input read from and written to the
    # provider's cache, output spent reasoning.
    cache_read_tokens: Mapped[int | None]
    cache_write_tokens: Mapped[int | None]
    reasoning_tokens: Mapped[int | None]
    charged_tokens: Mapped[int | None] = mapped_column(BigInteger)
    cost_usd: Mapped[Decimal | None] = mapped_column(Numeric(16, 8))
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    ttft_ms: Mapped[int | None]
    total_ms: Mapped[int | None]
    idempotency_key: Mapped[str | None] = mapped_column(String(128))
    parent_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL"), index=True
    )
    params: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    completed_at: Mapped[dt.datetime | None]
