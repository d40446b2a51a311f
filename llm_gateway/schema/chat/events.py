"""Message events streamed to subscribers of a dialog."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Annotated

import strawberry

from llm_gateway.schema.chat.types import MessageType
from llm_gateway.schema.money.accounts import BalanceType
from llm_gateway.schema.scalars import SafeInt


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
    prompt_tokens: SafeInt
    completion_tokens: SafeInt
    charged_tokens: SafeInt
    cost_usd: Decimal | None


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
