"""Models and agents."""

from __future__ import annotations

from llm_gateway.schema.catalog.types import AgentType, ModelType
from llm_gateway.schema.context import Info
from llm_gateway.services.catalog import listing as catalog


async def models(info: Info) -> list[ModelType]:
    """Enabled models; staff see disabled ones too."""
    staff = info.context.principal.is_staff
    async with info.context.services.db.read() as session:
        rows = await catalog.list_models(session, include_disabled=staff)
    return [ModelType.from_row(row) for row in rows]


async def model(info: Info, name: str) -> ModelType:
    staff = info.context.principal.is_staff
    async with info.context.services.db.read() as session:
        row = await catalog.get_model(session, name, include_disabled=staff)
    return ModelType.from_row(row)


async def agents(info: Info) -> list[AgentType]:
    """Enabled agents; staff see disabled ones too."""
    staff = info.context.principal.is_staff
    async with info.context.services.db.read() as session:
        rows = await catalog.list_agents(session, include_disabled=staff)
    return [AgentType.from_row(row) for row in rows]
