"""Staff curate models and agents; every change is audited, and every instance follows
it at once (models are read per request; cached credentials are dropped on notice)."""

from __future__ import annotations

from llm_gateway.schema.catalog.inputs import (
    CreateAgentInput,
    CreateModelInput,
    DeleteAgentInput,
    DeleteModelInput,
    UpdateAgentInput,
    UpdateModelInput,
)
from llm_gateway.schema.catalog.types import (
    AgentType,
    DeletedAgent,
    DeletedModel,
    ModelType,
    ReloadModelsPayload,
)
from llm_gateway.schema.context import Info
from llm_gateway.schema.inputs import patch_value
from llm_gateway.services.catalog import agents as agents_admin
from llm_gateway.services.catalog import models as models_admin
from llm_gateway.services.catalog.params import GenerationParams


async def create_model(info: Info, input: CreateModelInput) -> ModelType:
    ctx = info.context
    draft = models_admin.ModelDraft(
        name=input.name,
        provider=input.provider.value,
        upstream_model=input.upstream_model,
        context_window=input.context_window,
        max_output_tokens=input.max_output_tokens,
        display_name=input.display_name,
        prompt_price_per_1k=input.prompt_price_per_1k,
        completion_price_per_1k=input.completion_price_per_1k,
        prompt_weight=input.prompt_weight,
        completion_weight=input.completion_weight,
        cache_read_weight=input.cache_read_weight,
        cache_write_weight=input.cache_write_weight,
        cache_read_price_per_1k=input.cache_read_price_per_1k,
        cache_write_price_per_1k=input.cache_write_price_per_1k,
        enabled=input.enabled,
        is_default=input.is_default,
        fallback_model=input.fallback_model,
    )
    async with ctx.services.db.transaction() as session:
        row = await models_admin.create_model(
            session, ctx.actor(), draft, broker=ctx.services.broker
        )
    return ModelType.from_row(row)


async def update_model(info: Info, input: UpdateModelInput) -> ModelType:
    ctx = info.context
    patch = models_admin.ModelPatch(
        display_name=patch_value(input.display_name),
        provider=patch_value(input.provider),
        upstream_model=patch_value(input.upstream_model),
        context_window=patch_value(input.context_window),
        max_output_tokens=patch_value(input.max_output_tokens),
        prompt_price_per_1k=patch_value(input.prompt_price_per_1k),
        completion_price_per_1k=patch_value(input.completion_price_per_1k),
        prompt_weight=patch_value(input.prompt_weight),
        completion_weight=patch_value(input.completion_weight),
        cache_read_weight=patch_value(input.cache_read_weight),
        cache_write_weight=patch_value(input.cache_write_weight),
        cache_read_price_per_1k=patch_value(input.cache_read_price_per_1k),
        cache_write_price_per_1k=patch_value(input.cache_write_price_per_1k),
        enabled=patch_value(input.enabled),
        is_default=patch_value(input.is_default),
        fallback_model=patch_value(input.fallback_model),
    )
    async with ctx.services.db.transaction() as session:
        row = await models_admin.update_model(
            session, ctx.actor(), input.name, patch, broker=ctx.services.broker
        )
    return ModelType.from_row(row)


async def delete_model(info: Info, input: DeleteModelInput) -> DeletedModel:
    """Delete a model; dialogs using it move to the replacement (required while any do)."""
    ctx = info.context
    async with ctx.services.db.transaction() as session:
        deletion = await models_admin.delete_model(
            session,
            ctx.actor(),
            input.name,
            replacement=input.replacement,
            broker=ctx.services.broker,
        )
    return DeletedModel(
        name=deletion.name,
        moved_dialogs=deletion.moved_dialogs,
        moved_agents=deletion.moved_agents,
        replacement=ModelType.from_row(deletion.replacement) if deletion.replacement else None,
    )


async def reload_models(info: Info) -> ReloadModelsPayload:
    """Every instance drops its cached settings now; answers with the enabled models."""
    ctx = info.context
    reloaded = await models_admin.reload_models(ctx.services.db, ctx.services.broker, ctx.actor())
    return ReloadModelsPayload(
        status=reloaded.status, message=reloaded.message, models=reloaded.models
    )


async def create_agent(info: Info, input: CreateAgentInput) -> AgentType:
    ctx = info.context
    draft = agents_admin.AgentDraft(
        name=input.name,
        description=input.description,
        system_prompt=input.system_prompt,
        model=input.model,
        params=GenerationParams(
            temperature=input.temperature, top_p=input.top_p, max_tokens=input.max_tokens
        ),
        enabled=input.enabled,
    )
    async with ctx.services.db.transaction() as session:
        row = await agents_admin.create_agent(
            session,
            ctx.actor(),
            draft,
            max_content=ctx.services.limits.max_content_length,
            broker=ctx.services.broker,
        )
    return AgentType.from_row(row)


async def update_agent(info: Info, input: UpdateAgentInput) -> AgentType:
    ctx = info.context
    patch = agents_admin.AgentPatch(
        name=patch_value(input.name),
        description=patch_value(input.description),
        system_prompt=patch_value(input.system_prompt),
        model=patch_value(input.model),
        temperature=patch_value(input.temperature),
        top_p=patch_value(input.top_p),
        max_tokens=patch_value(input.max_tokens),
        enabled=patch_value(input.enabled),
    )
    async with ctx.services.db.transaction() as session:
        row = await agents_admin.update_agent(
            session,
            ctx.actor(),
            input.id,
            patch,
            max_content=ctx.services.limits.max_content_length,
            broker=ctx.services.broker,
        )
    return AgentType.from_row(row)


async def delete_agent(info: Info, input: DeleteAgentInput) -> DeletedAgent:
    """Delete an agent; dialogs started from it keep working without it."""
    ctx = info.context
    async with ctx.services.db.transaction() as session:
        row = await agents_admin.delete_agent(
            session, ctx.actor(), input.id, broker=ctx.services.broker
        )
    return DeletedAgent(id=row.id, name=row.name)
