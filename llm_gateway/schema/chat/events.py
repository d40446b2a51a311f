"""Message events streamed to subscribers of a dialog."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated

import strawberry

from llm_gateway.schema.chat.types import MessageType
from llm_gateway.schema.money.accounts import BalanceType
from llm_gateway.schema.scalars import SafeInt

if TYPE_CHECKING:
    from llm_gateway.db import models as db


@strawberry.type
class MessageStarted:
    message: MessageType


@strawberry.type
class MessageDelta:
    message_id: uuid.UUID
    seq: int = strawberry.field(
        description="1, 2, 3, … per message. A late joiner's first delta carries the text "
        "so far with the seq it reaches."
    )
    text: str


@strawberry.type
class MessageUsage:
    prompt_tokens: SafeInt = strawberry.field(
        description="All input tokens, the cache's reads and writes included."
    )
    cache_read_tokens: SafeInt = strawberry.field(
        description="Of promptTokens, read from the provider's prompt cache."
    )
    cache_write_tokens: SafeInt = strawberry.field(
        description="Of promptTokens, written to the provider's prompt cache."
    )
    completion_tokens: SafeInt
    reasoning_tokens: SafeInt | None = strawberry.field(
        description="Of completionTokens, spent reasoning; null when the provider does not say."
    )
    charged_tokens: SafeInt
    cost_usd: Decimal | None

    @staticmethod
    def from_row(row: db.Message) -> MessageUsage:
        """A finished answer's usage (0 where nothing was recorded)."""
        return MessageUsage(
            prompt_tokens=row.prompt_tokens or 0,
            cache_read_tokens=row.cache_read_tokens or 0,
            cache_write_tokens=row.cache_write_tokens or 0,
            completion_tokens=row.completion_tokens or 0,
            reasoning_tokens=row.reasoning_tokens,
            charged_tokens=row.charged_tokens or 0,
            cost_usd=row.cost_usd,
        )


@strawberry.type
class MessageCompleted:
    message: MessageType
    usage: MessageUsage
    balance: BalanceType


@strawberry.type
class MessageFailed:
    message_id: uuid.UUID
    code: str
    error_message: str = strawberry.field(
        description="Why, for people. (Named so it can sit beside MessageStarted.message.)"
    )
    final: MessageType | None = strawberry.field(
        description="The stored answer: its status, any partial text and what it was charged."
    )


MessageEvent = Annotated[
    MessageStarted | MessageDelta | MessageCompleted | MessageFailed,
    strawberry.union("MessageEvent"),
]


@strawberry.type
class SendMessagePayload:
    user_message: MessageType
    assistant_message: MessageType
    replayed: bool = strawberry.field(
        description="True when the idempotency key matched an earlier send: nothing new."
    )
