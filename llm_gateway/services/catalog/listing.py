"""Reading the model registry and the agent presets."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from llm_gateway.db.models import Agent, Model
from llm_gateway.errors import NotFound, ValidationFailed


async def list_models(session: AsyncSession, *, include_disabled: bool) -> Sequence[Model]:
    query = select(Model).order_by(Model.is_default.desc(), Model.name)
    if not include_disabled:
        query = query.where(Model.enabled)
    return (await session.scalars(query)).all()


async def get_model(session: AsyncSession, name: str, *, include_disabled: bool) -> Model:
    model = await session.scalar(select(Model).where(Model.name == name))
    if model is None or (not model.enabled and not include_disabled):
        raise NotFound(f"Model {name!r} does not exist.")
    return model


async def usable_model(session: AsyncSession, name: str, *, field: str = "model") -> Model:
    """An enabled model by name, or a VALIDATION_FAILED that lists what can be used."""
    model = await session.scalar(select(Model).where(Model.name == name))
    if model is None or not model.enabled:
        names = [m.name for m in await list_models(session, include_disabled=False)]
        raise ValidationFailed(
            f"Model {name!r} is not available. Available models: {', '.join(names)}.",
            field=field,
            available=names,
        )
    return model


async def default_model(session: AsyncSession) -> Model:
    """The model marked default if enabled, else the first enabled one."""
    models = await list_models(session, include_disabled=False)
    if not models:
        raise ValidationFailed("No model is enabled; ask staff to enable one.", field="model")
    return models[0]


async def models_by_ids(session: AsyncSession, ids: Sequence[int]) -> dict[int, Model]:
    rows = await session.scalars(select(Model).where(Model.id.in_(ids)))
    return {row.id: row for row in rows}


async def list_agents(session: AsyncSession, *, include_disabled: bool) -> Sequence[Agent]:
    query = select(Agent).order_by(Agent.name)
    if not include_disabled:
        query = query.where(Agent.enabled)
    return (await session.scalars(query)).all()


async def usable_agent(session: AsyncSession, agent_id: int, *, field: str = "agentId") -> Agent:
    agent = await session.get(Agent, agent_id)
    if agent is None or not agent.enabled:
        raise ValidationFailed(f"Agent {agent_id} is not available.", field=field)
    return agent


async def agents_by_ids(session: AsyncSession, ids: Sequence[int]) -> dict[int, Agent]:
    rows = await session.scalars(select(Agent).where(Agent.id.in_(ids)))
    return {row.id: row for row in rows}
