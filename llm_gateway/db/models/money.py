"""Balances, the holds placed before a generation, and the append-only ledger."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Index,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from llm_gateway.db.base import Base, BigIntPK, CreatedAt, Timestamps, one_of
from llm_gateway.enums import LedgerKind, ReservationState


class Balance(Timestamps, Base):
    """A user's tokens; ``available = balance - reserved`` and neither goes negative."""

    __tablename__ = "balances"
    __table_args__ = (
        CheckConstraint("balance >= 0", name="balance_not_negative"),
        CheckConstraint("reserved >= 0 AND reserved <= balance", name="reserved_covered"),
    )

    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
    reserved: Mapped[int] = mapped_column(BigInteger, default=0)
    daily_limit: Mapped[int | None] = mapped_column(BigInteger)
    monthly_limit: Mapped[int | None] = mapped_column(BigInteger)
    lifetime_used: Mapped[int] = mapped_column(BigInteger, default=0)


class Reservation(CreatedAt, Base):
    """Tokens held for one generation until it is settled or released."""

    __tablename__ = "reservations"
    __table_args__ = (
        CheckConstraint("amount >= 0", name="amount_not_negative"),
        CheckConstraint(one_of("state", ReservationState), name="state"),
        Index("ix_reservations_user_state", "user_id", "state"),
        Index("ix_reservations_state_expires", "state", "expires_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[int] = mapped_column(BigInteger)
    message_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    api_request_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    api_key_id: Mapped[uuid.UUID | None]
    model_name: Mapped[str | None] = mapped_column(String(100))
    amount: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(16), default=ReservationState.HELD)
    expires_at: Mapped[dt.datetime]
    instance_id: Mapped[str | None] = mapped_column(String(64))
    closed_at: Mapped[dt.datetime | None]


class TokenTransaction(CreatedAt, Base):
    """One signed movement of tokens; the balance is always the sum of these rows."""

    __tablename__ = "token_transactions"
    __table_args__ = (
        CheckConstraint(one_of("kind", LedgerKind), name="kind"),
        CheckConstraint("balance_after >= 0", name="balance_after_not_negative"),
        UniqueConstraint(
            "user_id", "idempotency_key", name="uq_token_transactions_user_idempotency_key"
        ),
        UniqueConstraint("reservation_id"),
        Index("ix_token_transactions_user_created", "user_id", "created_at", "id"),
        Index("ix_token_transactions_created", "created_at"),
        # Staff: every user's ledger by time, whole or of one kind.
        Index("ix_token_transactions_created_id", "created_at", "id"),
        Index("ix_token_transactions_kind_created", "kind", "created_at", "id"),
        # An API key's daily limit: its usage rows of the day.
        Index("ix_token_transactions_api_key_created", "api_key_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger)
    amount: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(16))
    balance_after: Mapped[int] = mapped_column(BigInteger)
    reservation_id: Mapped[uuid.UUID | None]
    message_id: Mapped[uuid.UUID | None]
    dialog_id: Mapped[uuid.UUID | None]
    api_request_id: Mapped[uuid.UUID | None]
    api_key_id: Mapped[uuid.UUID | None]
    model_name: Mapped[str | None] = mapped_column(String(100))
    prompt_tokens: Mapped[int | None]
    completion_tokens: Mapped[int | None]
    # Parts of the two above (README: prompt caching): input read from and written to the
    # provider's cache, output spent reasoning.
    cache_read_tokens: Mapped[int | None]
    cache_write_tokens: Mapped[int | None]
    reasoning_tokens: Mapped[int | None]
    uncharged_tokens: Mapped[int | None] = mapped_column(BigInteger)
    cost_usd: Mapped[Decimal | None] = mapped_column(Numeric(16, 8))
    actor_id: Mapped[int | None] = mapped_column(BigInteger)
    reason: Mapped[str | None] = mapped_column(Text)
    idempotency_key: Mapped[str | None] = mapped_column(String(128))
