"""Mutation inputs: one ``input`` argument per mutation."""

from __future__ import annotations

import enum
import uuid
from typing import Any

import strawberry
from strawberry.types.maybe import Some

from llm_gateway.schema.scalars import SafeInt
from llm_gateway.services.plumbing.patch import UNSET


def patch_value(value: Some[Any] | None) -> Any:
    """A ``Maybe`` input as a service patch field: absent is UNSET, an enum its value."""
    if value is None:
        return UNSET
    return value.value.value if isinstance(value.value, enum.Enum) else value.value


@strawberry.input
class CreateDialogInput:
    title: str | None = None
    model: str | None = strawberry.field(
        default=None, description="Model name; default: the agent's model, else the default."
    )
    agent_id: int | None = None
    system_prompt: str | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: list[str] | None = None


@strawberry.input(description="Fields left out keep their value; null clears one.")
class UpdateDialogInput:
    id: uuid.UUID
    title: strawberry.Maybe[str | None]
    model: strawberry.Maybe[str]
    agent_id: strawberry.Maybe[int | None]
    system_prompt: strawberry.Maybe[str | None]
    temperature: strawberry.Maybe[float | None]
    top_p: strawberry.Maybe[float | None]
    max_tokens: strawberry.Maybe[int | None]
    stop: strawberry.Maybe[list[str] | None]


@strawberry.input
class DeleteDialogInput:
    id: uuid.UUID


@strawberry.input
class TopUpBalanceInput:
    user_id: SafeInt
    amount: SafeInt = strawberry.field(description="Tokens to add (positive).")
    reason: str
    idempotency_key: str | None = strawberry.field(
        default=None, description="A repeat with the same key changes nothing."
    )


@strawberry.input
class AdjustBalanceInput:
    user_id: SafeInt
    amount: SafeInt = strawberry.field(description="Signed; never takes the balance below zero.")
    reason: str
    idempotency_key: str | None = None


@strawberry.input(description="Fields left out keep their value; null removes the limit.")
class SetBalanceLimitsInput:
    user_id: SafeInt
    daily_limit: strawberry.Maybe[SafeInt | None]
    monthly_limit: strawberry.Maybe[SafeInt | None]


@strawberry.input
class SendMessageInput:
    dialog_id: uuid.UUID
    content: str
    idempotency_key: str | None = strawberry.field(
        default=None, description="A repeat with the same key returns the same messages."
    )
    model: str | None = strawberry.field(default=None, description="Use this model for once.")
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: list[str] | None = None


@strawberry.input
class CancelGenerationInput:
    message_id: uuid.UUID


@strawberry.input
class RegenerateInput:
    message_id: uuid.UUID = strawberry.field(
        description="The answer to replace, or the user message to answer again."
    )
    model: str | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: list[str] | None = None


@strawberry.input
class EditMessageInput:
    message_id: uuid.UUID = strawberry.field(description="The user message to rewrite.")
    content: str
    idempotency_key: str | None = strawberry.field(
        default=None, description="A repeat with the same key returns the same messages."
    )
    model: str | None = strawberry.field(default=None, description="Use this model for once.")
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: list[str] | None = None


@strawberry.input
class SwitchBranchInput:
    dialog_id: uuid.UUID
    message_id: uuid.UUID = strawberry.field(
        description="Any message of the branch to show; its newest reply becomes the leaf."
    )


@strawberry.input
class ImportDialogsInput:
    data: strawberry.scalars.JSON = strawberry.field(
        description="An exportDialogs result (version 3.0 or 2.0), or a 1.0 export of the old "
        "service."
    )


@strawberry.input
class SetConfigInput:
    key: str = strawberry.field(
        description="e.g. OPENAI_API_KEY, ANTHROPIC_BASE_URL; known keys override the env."
    )
    value: str
    secret: bool | None = strawberry.field(
        default=None, description="Encrypt and mask it (provider keys always are)."
    )
    description: str | None = None


@strawberry.input
class DeleteConfigInput:
    key: str
