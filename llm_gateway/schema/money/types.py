"""The ledger as clients see it, and balance events."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import TYPE_CHECKING, TypeAlias

import strawberry

from llm_gateway import enums
from llm_gateway.schema.money.accounts import BalanceType
from llm_gateway.schema.permissions import IsStaff
from llm_gateway.schema.scalars import SafeInt

if TYPE_CHECKING:
    from llm_gateway.db import models as db


# The ledger's own kinds (llm_gateway.enums), under their GraphQL name.
TransactionKind: TypeAlias = enums.LedgerKind
strawberry.enum(TransactionKind, name="TransactionKind")


@strawberry.type(name="Transaction")
class TransactionType:
    """One ledger row: a signed movement of tokens and the balance right after it."""

    id: strawberry.ID
    user_id: SafeInt
    amount: SafeInt = strawberry.field(description="Signed: negative takes tokens away.")
    kind: TransactionKind
    balance_after: SafeInt
    message_id: uuid.UUID | None
    dialog_id: uuid.UUID | None
    model_name: str | None
    prompt_tokens: SafeInt | None = strawberry.field(
        description="All input tokens, the cache's reads and writes included."
    )
    cache_read_tokens: SafeInt | None = strawberry.field(
        description="Of promptTokens, read from the provider's prompt cache."
    )
    cache_write_tokens: SafeInt | None = strawberry.field(
        description="Of promptTokens, written to the provider's prompt cache."
    )
    completion_tokens: SafeInt | None
    reasoning_tokens: SafeInt | None = strawberry.field(
        description="Of completionTokens, spent reasoning; null when the provider does not say."
    )
    uncharged_tokens: SafeInt | None = strawberry.field(
        description="Usage beyond the hold that was not charged (shown to staff too)."
    )
    reason: str | None
    created_at: dt.datetime
    cost_usd_value: strawberry.Private[Decimal | None]
    actor_id_value: strawberry.Private[int | None]

    @strawberry.field(permission_classes=[IsStaff], description="USD cost (staff only).")  # type: ignore[untyped-decorator]
    def cost_usd(self) -> Decimal | None:
        return self.cost_usd_value

    @strawberry.field(permission_classes=[IsStaff], description="Staff member who made it.")  # type: ignore[untyped-decorator]
    def actor_id(self) -> SafeInt | None:
        return self.actor_id_value

    @staticmethod
    def from_row(row: db.TokenTransaction) -> TransactionType:
        return TransactionType(
            id=strawberry.ID(str(row.id)),
            user_id=row.user_id,
            amount=row.amount,
            kind=TransactionKind(row.kind),
            balance_after=row.balance_after,
            message_id=row.message_id,
            dialog_id=row.dialog_id,
            model_name=row.model_name,
            prompt_tokens=row.prompt_tokens,
            completion_tokens=row.completion_tokens,
            cache_read_tokens=row.cache_read_tokens,
            cache_write_tokens=row.cache_write_tokens,
            reasoning_tokens=row.reasoning_tokens,
            uncharged_tokens=row.uncharged_tokens,
            reason=row.reason,
            created_at=row.created_at,
            cost_usd_value=row.cost_usd,
            actor_id_value=row.actor_id,
        )


@strawberry.type
class BalanceChangePayload:
    transaction: TransactionType
    balance: BalanceType
    replayed: bool = strawberry.field(
        description="True when the idempotency key matched an earlier change: nothing new."
    )


@strawberry.type
class BalanceEvent:
    user_id: SafeInt
    reason: str = strawberry.field(description="What moved it: usage, topup, adjustment, …")
    balance: BalanceType
