"""Staff curate the agent presets: create, update, delete.

An agent's generation params are checked against its model (the default model when it
names none), as a dialog's are, so a dialog started from it can always be sent. Deleting
an agent leaves its dialogs working: they keep their own copy of what they need, and the
database clears their ``agent_id``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from llm_gateway.db.models import Agent, Model
from llm_gateway.errors import Conflict, NotFound, ValidationFailed
from llm_gateway.services.catalog import listing as catalog
from llm_gateway.services.catalog.model_checks import (
    MAX_NAME_LENGTH,
    changed,
    flush_or_conflict,
)
from llm_gateway.services.catalog.params import GenerationParams, validate_params
from llm_gateway.services.plumbing import config_notices
from llm_gateway.services.plumbing.broker import Broker
from llm_gateway.services.plumbing.patch import UNSET, Unset
from llm_gateway.services.staff import audit

MAX_DESCRIPTION_LENGTH = 1_000


@dataclass(frozen=True, slots=True)
class AgentDraft:
    name: str
    description: str = ""
    system_prompt: str = ""
    model: str | None = None  # a model's name; None: the default model
    params: GenerationParams = field(default_factory=GenerationParams)
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class AgentPatch:
    name: str | Unset = UNSET
    description: str | Unset = UNSET
    system_prompt: str | Unset = UNSET
    model: str | Unset | None = UNSET
    temperature: float | Unset | None = UNSET
    top_p: float | Unset | None = UNSET
    max_tokens: int | Unset | None = UNSET
    enabled: bool | Unset = UNSET


def _name(value: str) -> str:
    value = value.strip()
    if not value or len(value) > MAX_NAME_LENGTH:
        raise ValidationFailed(f"name takes 1 to {MAX_NAME_LENGTH} characters.", field="name")
    return value


def _check_text(description: str, system_prompt: str, max_content: int) -> None:
    if len(description) > MAX_DESCRIPTION_LENGTH:
        raise ValidationFailed(
            f"description must be at most {MAX_DESCRIPTION_LENGTH} characters.",
            field="description",
        )
    if len(system_prompt) > max_content:
        raise ValidationFailed(
            f"systemPrompt must be at most {max_content} characters.", field="systemPrompt"
        )


async def _name_is_free(session: AsyncSession, name: str, agent_id: int | None = None) -> None:
    query = select(Agent.id).where(Agent.name == name)
    if agent_id is not None:
        query = query.where(Agent.id != agent_id)
    if await session.scalar(query) is not None:
        raise Conflict(f"An agent named {name!r} already exists.", name=name)


async def _model_for_params(session: AsyncSession, model_id: int | None) -> Model:
    if model_id is None:
        return await catalog.default_model(session)
    return (await catalog.models_by_ids(session, [model_id]))[model_id]


def _params(agent: Agent) -> GenerationParams:
    return GenerationParams(
        temperature=agent.temperature, top_p=agent.top_p, max_tokens=agent.max_tokens
    )


async def _snapshot(session: AsyncSession, agent: Agent) -> dict[str, Any]:
    model = (
        await session.scalar(select(Model.name).where(Model.id == agent.model_id))
        if agent.model_id is not None
        else None
    )
    return {
        "name": agent.name,
        "description": agent.description,
        "system_prompt": agent.system_prompt,
        "model": model,
        "temperature": agent.temperature,
        "top_p": agent.top_p,
        "max_tokens": agent.max_tokens,
        "enabled": agent.enabled,
    }


async def create_agent(
    session: AsyncSession,
    actor: audit.Actor,
    draft: AgentDraft,
    *,
    max_content: int,
    broker: Broker,
) -> Agent:
    name = _name(draft.name)
    _check_text(draft.description, draft.system_prompt, max_content)
    await _name_is_free(session, name)
    model = await catalog.usable_model(session, draft.model) if draft.model is not None else None
    params = GenerationParams(
        temperature=draft.params.temperature,
        top_p=draft.params.top_p,
        max_tokens=draft.params.max_tokens,
    )
    validate_params(params, model or await catalog.default_model(session))
    agent = Agent(
        name=name,
        description=draft.description,
        system_prompt=draft.system_prompt,
        model_id=model.id if model is not None else None,
        temperature=params.temperature,
        top_p=params.top_p,
        max_tokens=params.max_tokens,
        enabled=draft.enabled,
    )
    session.add(agent)
    await flush_or_conflict(session, "agents")
    await audit.record(
        session, actor, "agent.create", "agent", agent.id, after=await _snapshot(session, agent)
    )
    config_notices.after_catalog_change(session, broker)
    return agent


async def _get(session: AsyncSession, agent_id: int) -> Agent:
    agent = await session.scalar(select(Agent).where(Agent.id == agent_id).with_for_update())
    if agent is None:
        raise NotFound(f"Agent {agent_id} does not exist.", id=agent_id)
    return agent


async def update_agent(
    session: AsyncSession,
    actor: audit.Actor,
    agent_id: int,
    patch: AgentPatch,
    *,
    max_content: int,
    broker: Broker,
) -> Agent:
    agent = await _get(session, agent_id)
    before = await _snapshot(session, agent)
    if not isinstance(patch.name, Unset):
        agent.name = _name(patch.name)
        await _name_is_free(session, agent.name, agent.id)
    if not isinstance(patch.description, Unset):
        agent.description = patch.description
    if not isinstance(patch.system_prompt, Unset):
        agent.system_prompt = patch.system_prompt
    _check_text(agent.description, agent.system_prompt, max_content)
    if not isinstance(patch.model, Unset):
        agent.model_id = (
            (await catalog.usable_model(session, patch.model)).id
            if patch.model is not None
            else None
        )
    for name in ("temperature", "top_p", "max_tokens"):
        value = getattr(patch, name)
        if not isinstance(value, Unset):
            setattr(agent, name, value)
    # Re-checked in full: a new model may not take the params the old one did.
    validate_params(_params(agent), await _model_for_params(session, agent.model_id))
    if not isinstance(patch.enabled, Unset):
        agent.enabled = patch.enabled
    await flush_or_conflict(session, "agents")
    old, new = changed(before, await _snapshot(session, agent))
    await audit.record(session, actor, "agent.update", "agent", agent.id, before=old, after=new)
    config_notices.after_catalog_change(session, broker)
    return agent


async def delete_agent(
    session: AsyncSession, actor: audit.Actor, agent_id: int, *, broker: Broker
) -> Agent:
    """Delete an agent; its dialogs stay, without it (``agent_id`` is set null)."""
    agent = await _get(session, agent_id)
    before = await _snapshot(session, agent)
    await session.delete(agent)
    await session.flush()
    await audit.record(session, actor, "agent.delete", "agent", agent_id, before=before)
    config_notices.after_catalog_change(session, broker)
    return agent
