"""Dialogs and messages."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import TYPE_CHECKING, TypeAlias

import strawberry

from llm_gateway import enums
from llm_gateway.errors import NotFound
from llm_gateway.schema.catalog.types import AgentType, ModelType
from llm_gateway.schema.chat.usage import DialogUsage
from llm_gateway.schema.context import Info
from llm_gateway.schema.scalars import SafeInt

if TYPE_CHECKING:
    from llm_gateway.db import models as db


# The GraphQL enums are the shared ones (llm_gateway.enums), so they cannot drift from
# the database's CHECK constraints; strawberry only attaches its definition to them.
MessageRole: TypeAlias = enums.Role
MessageStatus: TypeAlias = enums.MessageStatus
strawberry.enum(MessageRole, name="MessageRole")
strawberry.enum(MessageStatus)


@strawberry.type(name="Message")
class MessageType:
    id: uuid.UUID
    dialog_id: uuid.UUID
    role: MessageRole
    content: str
    status: MessageStatus
    model_name: str | None = strawberry.field(description="The model that actually answered.")
    prompt_tokens: SafeInt | None
    completion_tokens: SafeInt | None
    cache_read_tokens: SafeInt | None = strawberry.field(
        description="Of promptTokens, read from the provider's prompt cache."
    )
    cache_write_tokens: SafeInt | None = strawberry.field(
        description="Of promptTokens, written to the provider's prompt cache."
    )
    reasoning_tokens: SafeInt | None = strawberry.field(
        description="Of completionTokens, spent reasoning; null when the provider does not say."
    )
    charged_tokens: SafeInt | None = strawberry.field(description="Tokens taken from the balance.")
    error_code: str | None
    error_message: str | None
    ttft_ms: int | None = strawberry.field(description="Time to first token, in milliseconds.")
    total_ms: int | None
    parent_id: uuid.UUID | None = strawberry.field(
        description="The previous message on this message's branch (None: the first)."
    )
    created_at: dt.datetime
    completed_at: dt.datetime | None

    @strawberry.field(  # type: ignore[untyped-decorator]
        description="This message and its alternatives (edits of a question, regenerated "
        "answers: the messages with the same parent), oldest first. Draw `2 / 3` as "
        "`siblingPosition / siblingIds.length`; `switchBranch` shows another one."
    )
    async def sibling_ids(self, info: Info) -> list[uuid.UUID]:
        found = await info.context.loaders.siblings.load((self.dialog_id, self.parent_id))
        return found or [self.id]

    @strawberry.field(description="This message's place among its siblings, from 1.")  # type: ignore[untyped-decorator]
    async def sibling_position(self, info: Info) -> int:
        found = await info.context.loaders.siblings.load((self.dialog_id, self.parent_id))
        return found.index(self.id) + 1 if found and self.id in found else 1

    @staticmethod
    def from_row(row: db.Message) -> MessageType:
        return MessageType(
            id=row.id,
            dialog_id=row.dialog_id,
            role=MessageRole(row.role),
            content=row.content,
            status=MessageStatus(row.status),
            model_name=row.model_name,
            prompt_tokens=row.prompt_tokens,
            completion_tokens=row.completion_tokens,
            cache_read_tokens=row.cache_read_tokens,
            cache_write_tokens=row.cache_write_tokens,
            reasoning_tokens=row.reasoning_tokens,
            charged_tokens=row.charged_tokens,
            error_code=row.error_code,
            error_message=row.error_message,
            ttft_ms=row.ttft_ms,
            total_ms=row.total_ms,
            parent_id=row.parent_id,
            created_at=row.created_at,
            completed_at=row.completed_at,
        )


@strawberry.type(name="Dialog")
class DialogType:
    id: uuid.UUID
    title: str | None
    system_prompt: str | None
    temperature: float | None
    top_p: float | None
    max_tokens: int | None
    stop: list[str] | None
    created_at: dt.datetime
    updated_at: dt.datetime = strawberry.field(description="Moves with every message.")
    active_leaf_id: uuid.UUID | None = strawberry.field(
        description="The newest message of the branch `messages` returns (README: branches)."
    )
    model_id: strawberry.Private[int]
    agent_id: strawberry.Private[int | None]

    @strawberry.field
    async def model(self, info: Info) -> ModelType:
        row = await info.context.loaders.model_by_id.load(self.model_id)
        if row is None:  # the foreign key forbids it; say so rather than return junk
            raise NotFound("The dialog's model no longer exists.")
        return ModelType.from_row(row)

    @strawberry.field
    async def agent(self, info: Info) -> AgentType | None:
        if self.agent_id is None:
            return None
        row = await info.context.loaders.agent_by_id.load(self.agent_id)
        return AgentType.from_row(row) if row is not None else None

    @strawberry.field(description="What the dialog's answers used and cost, on every branch.")  # type: ignore[untyped-decorator]
    async def usage(self, info: Info) -> DialogUsage:
        totals = await info.context.loaders.dialog_usage.load(self.id)
        return DialogUsage.from_totals(totals)

    @strawberry.field
    async def last_message(self, info: Info) -> MessageType | None:
        row = await info.context.loaders.last_message_by_dialog.load(self.id)
        return MessageType.from_row(row) if row is not None else None

    @staticmethod
    def from_row(row: db.Dialog) -> DialogType:
        return DialogType(
            id=row.id,
            title=row.title,
            system_prompt=row.system_prompt,
            temperature=row.temperature,
            top_p=row.top_p,
            max_tokens=row.max_tokens,
            stop=row.stop,
            created_at=row.created_at,
            updated_at=row.updated_at,
            active_leaf_id=row.active_leaf_id,
            model_id=row.model_id,
            agent_id=row.agent_id,
        )


@strawberry.type
class DeletedDialog:
    id: uuid.UUID
