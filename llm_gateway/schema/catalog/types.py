"""Models users can chat with, and agent presets."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import TYPE_CHECKING, TypeAlias

import strawberry

from llm_gateway import enums
from llm_gateway.schema.context import Info
from llm_gateway.schema.scalars import SafeInt

if TYPE_CHECKING:
    from llm_gateway.db import models as db


# The catalog's own providers (llm_gateway.enums), the same set the CHECK constraint allows.
Provider: TypeAlias = enums.Provider
strawberry.enum(Provider)


@strawberry.type(name="Model")
class ModelType:
    """A model of the registry. Users see enabled ones; staff see all."""

    name: str
    display_name: str | None
    provider: Provider
    upstream_model: str
    context_window: int
    max_output_tokens: int
    prompt_price_per_1k: Decimal = strawberry.field(description="USD per 1,000 prompt tokens.")
    completion_price_per_1k: Decimal = strawberry.field(
        description="USD per 1,000 completion tokens."
    )
    prompt_weight: Decimal = strawberry.field(description="Balance tokens per prompt token.")
    completion_weight: Decimal = strawberry.field(
        description="Balance tokens per completion token."
    )
    cache_read_price_per_1k: Decimal = strawberry.field(
        description="USD per 1,000 prompt tokens read from the provider's prompt cache."
    )
    cache_write_price_per_1k: Decimal = strawberry.field(
        description="USD per 1,000 prompt tokens written to the provider's prompt cache."
    )
    cache_read_weight: Decimal = strawberry.field(
        description="Balance tokens per prompt token read from the provider's prompt cache."
    )
    cache_write_weight: Decimal = strawberry.field(
        description="Balance tokens per prompt token written to the provider's prompt cache."
    )
    enabled: bool
    is_default: bool
    updated_at: dt.datetime
    fallback_model_id: strawberry.Private[int | None]

    @strawberry.field
    async def fallback_model(self, info: Info) -> ModelType | None:
        if self.fallback_model_id is None:
            return None
        row = await info.context.loaders.model_by_id.load(self.fallback_model_id)
        return ModelType.from_row(row) if row is not None else None

    @staticmethod
    def from_row(row: db.Model) -> ModelType:
        return ModelType(
            name=row.name,
            display_name=row.display_name,
            provider=Provider(row.provider),
            upstream_model=row.upstream_model,
            context_window=row.context_window,
            max_output_tokens=row.max_output_tokens,
            prompt_price_per_1k=row.prompt_price_per_1k,
            completion_price_per_1k=row.completion_price_per_1k,
            prompt_weight=row.prompt_weight,
            completion_weight=row.completion_weight,
            cache_read_price_per_1k=row.cache_read_price_per_1k,
            cache_write_price_per_1k=row.cache_write_price_per_1k,
            cache_read_weight=row.cache_read_weight,
            cache_write_weight=row.cache_write_weight,
            enabled=row.enabled,
            is_default=row.is_default,
            updated_at=row.updated_at,
            fallback_model_id=row.fallback_model_id,
        )


@strawberry.type(name="Agent")
class AgentType:
    """A preset a dialog can start from."""

    id: int
    name: str
    description: str
    system_prompt: str
    temperature: float | None
    top_p: float | None
    max_tokens: int | None
    enabled: bool
    model_id: strawberry.Private[int | None]

    @strawberry.field(description="The agent's model; null means the default model.")  # type: ignore[untyped-decorator]
    async def model(self, info: Info) -> ModelType | None:
        if self.model_id is None:
            return None
        row = await info.context.loaders.model_by_id.load(self.model_id)
        return ModelType.from_row(row) if row is not None else None

    @staticmethod
    def from_row(row: db.Agent) -> AgentType:
        return AgentType(
            id=row.id,
            name=row.name,
            description=row.description,
            system_prompt=row.system_prompt,
            temperature=row.temperature,
            top_p=row.top_p,
            max_tokens=row.max_tokens,
            enabled=row.enabled,
            model_id=row.model_id,
        )


@strawberry.type
class DeletedModel:
    name: str
    moved_dialogs: SafeInt = strawberry.field(description="Dialogs moved to the replacement.")
    moved_agents: SafeInt = strawberry.field(description="Agents moved to the replacement.")
    replacement: ModelType | None


@strawberry.type
class DeletedAgent:
    id: int
    name: str


@strawberry.type
class ReloadModelsPayload:
    """What the previous service's reload answered: ``status`` is "ok"."""

    status: str
    message: str = strawberry.field(description='e.g. "Reloaded 5 models".')
    models: list[str] = strawberry.field(description="The enabled models' names.")
