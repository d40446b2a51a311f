"""Inputs of the staff mutations on models and agents: one ``input`` argument each."""

from __future__ import annotations

from decimal import Decimal

import strawberry

from llm_gateway.schema.catalog.types import Provider

_BY_RATIO = (
    "Null: the prompt's, at the provider's published ratio (Anthropic 0.1x reads, 1.25x "
    "writes; OpenAI 0.1x reads, 1x writes; others 1x)."
)


@strawberry.input
class CreateModelInput:
    name: str = strawberry.field(description="The public name clients choose (unique).")
    provider: Provider
    upstream_model: str = strawberry.field(description="The provider's id for the model.")
    context_window: int
    max_output_tokens: int = strawberry.field(description="At most the context window.")
    display_name: str | None = None
    prompt_price_per_1k: Decimal = strawberry.field(
        default=Decimal(0), description="USD per 1,000 prompt tokens (6 decimal places)."
    )
    completion_price_per_1k: Decimal = strawberry.field(
        default=Decimal(0), description="USD per 1,000 completion tokens (6 decimal places)."
    )
    prompt_weight: Decimal = strawberry.field(
        default=Decimal(1), description="Balance tokens per prompt token (4 decimal places)."
    )
    completion_weight: Decimal = strawberry.field(
        default=Decimal(1),
        description="Balance tokens per completion token (4 decimal places).",
    )
    cache_read_price_per_1k: Decimal | None = strawberry.field(
        default=None, description=f"USD per 1,000 cached prompt tokens read. {_BY_RATIO}"
    )
    cache_write_price_per_1k: Decimal | None = strawberry.field(
        default=None, description=f"USD per 1,000 prompt tokens written to the cache. {_BY_RATIO}"
    )
    cache_read_weight: Decimal | None = strawberry.field(
        default=None, description=f"Balance tokens per cached prompt token read. {_BY_RATIO}"
    )
    cache_write_weight: Decimal | None = strawberry.field(
        default=None,
        description=f"Balance tokens per prompt token written to the cache. {_BY_RATIO}",
    )
    enabled: bool = True
    is_default: bool = strawberry.field(
        default=False, description="Make it the default model (the previous one stops being it)."
    )
    fallback_model: str | None = strawberry.field(
        default=None, description="Another model's name, tried when this one's provider fails."
    )


@strawberry.input(description="Fields left out keep their value; null clears one.")
class UpdateModelInput:
    name: str = strawberry.field(description="The model to change.")
    display_name: strawberry.Maybe[str | None]
    provider: strawberry.Maybe[Provider]
    upstream_model: strawberry.Maybe[str]
    context_window: strawberry.Maybe[int]
    max_output_tokens: strawberry.Maybe[int]
    prompt_price_per_1k: strawberry.Maybe[Decimal]
    completion_price_per_1k: strawberry.Maybe[Decimal]
    prompt_weight: strawberry.Maybe[Decimal]
    completion_weight: strawberry.Maybe[Decimal]
    cache_read_price_per_1k: strawberry.Maybe[Decimal]
    cache_write_price_per_1k: strawberry.Maybe[Decimal]
    cache_read_weight: strawberry.Maybe[Decimal]
    cache_write_weight: strawberry.Maybe[Decimal]
    enabled: strawberry.Maybe[bool] = strawberry.field(
        description="A disabled model refuses new messages; the default cannot be disabled."
    )
    is_default: strawberry.Maybe[bool] = strawberry.field(
        description="true makes it the default; the default gives way only to another."
    )
    fallback_model: strawberry.Maybe[str | None]


@strawberry.input
class DeleteModelInput:
    name: str
    replacement: str | None = strawberry.field(
        default=None,
        description="An enabled model that takes over its dialogs and agents (and the "
        "default, if it was); required while dialogs use it.",
    )


@strawberry.input
class CreateAgentInput:
    name: str = strawberry.field(description="Unique.")
    description: str = ""
    system_prompt: str = ""
    model: str | None = strawberry.field(
        default=None, description="A model's name; null: the default model."
    )
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    enabled: bool = True


@strawberry.input(description="Fields left out keep their value; null clears one.")
class UpdateAgentInput:
    id: int
    name: strawberry.Maybe[str]
    description: strawberry.Maybe[str]
    system_prompt: strawberry.Maybe[str]
    model: strawberry.Maybe[str | None]
    temperature: strawberry.Maybe[float | None]
    top_p: strawberry.Maybe[float | None]
    max_tokens: strawberry.Maybe[int | None]
    enabled: strawberry.Maybe[bool]


@strawberry.input
class DeleteAgentInput:
    id: int
