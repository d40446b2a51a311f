"""Staff curate the model registry: create, update, delete, reload.

No instance caches models: every request reads them from the database, so a committed
change is what every instance serves next. What instances do cache is provider
credentials (``credential_cache.CredentialCache``); so every change here, and every reload, is
followed after its commit by a notice (``config_notices.after_catalog_change``) that
makes each instance re-read them at once.

Invariants kept here: names are unique; at most one model is the default, it is
enabled, and it stays the default until another takes its place; a model's fallback is
another model that does not fall back to it; a model still used by dialogs is deleted
only by moving them to an enabled replacement.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from llm_gateway.db.engine import Database
from llm_gateway.db.models import Agent, Dialog, Model
from llm_gateway.errors import Conflict, ValidationFailed
from llm_gateway.services.catalog import listing as catalog
from llm_gateway.services.catalog.model_checks import (
    AMOUNTS,
    MAX_NAME_LENGTH,
    MAX_UPSTREAM_LENGTH,
    ModelDraft,
    ModelPatch,
    amounts_of,
    changed,
    check_limits,
    checked_amount,
    checked_text,
    display_name_of,
    fallback_for,
    flush_or_conflict,
    locked_model,
    snapshot,
    take_default,
)
from llm_gateway.services.catalog.params import PROVIDER_RANGES
from llm_gateway.services.plumbing import config_notices
from llm_gateway.services.plumbing.broker import Broker
from llm_gateway.services.plumbing.patch import Unset
from llm_gateway.services.staff import audit

# Callers import the drafts from here too (``models_admin.ModelDraft``).
__all__ = [
    "ModelDeletion",
    "ModelDraft",
    "ModelPatch",
    "Reloaded",
    "amounts_of",
    "changed",
    "create_model",
    "delete_model",
    "flush_or_conflict",
    "reload_models",
    "update_model",
]


@dataclass(frozen=True, slots=True)
class ModelDeletion:
    name: str
    moved_dialogs: int
    moved_agents: int
    replacement: Model | None


@dataclass(frozen=True, slots=True)
class Reloaded:
    models: list[str]  # the enabled models' names, default first

    status: str = "ok"

    @property
    def message(self) -> str:
        return f"Reloaded {len(self.models)} models"


# --- mutations ------------------------------------------------------------------------


async def create_model(
    session: AsyncSession, actor: audit.Actor, draft: ModelDraft, *, broker: Broker
) -> Model:
    name = checked_text(draft.name, "name", MAX_NAME_LENGTH)
    if await session.scalar(select(Model.id).where(Model.name == name)) is not None:
        raise Conflict(f"A model named {name!r} already exists.", name=name)
    model = Model(
        name=name,
        display_name=display_name_of(draft.display_name),
        provider=draft.provider,
        upstream_model=checked_text(draft.upstream_model, "upstreamModel", MAX_UPSTREAM_LENGTH),
        context_window=draft.context_window,
        max_output_tokens=draft.max_output_tokens,
        **amounts_of(draft),
        enabled=draft.enabled,
        is_default=False,
    )
    check_limits(model)
    model.fallback_model_id = await fallback_for(session, model, draft.fallback_model)
    if draft.is_default:
        await take_default(session, model)
    session.add(model)
    await flush_or_conflict(session, "models")
    await audit.record(
        session, actor, "model.create", "model", name, after=await snapshot(session, model)
    )
    config_notices.after_catalog_change(session, broker)
    return model


async def update_model(
    session: AsyncSession, actor: audit.Actor, name: str, patch: ModelPatch, *, broker: Broker
) -> Model:
    model = await locked_model(session, name)
    before = await snapshot(session, model)
    was_default = model.is_default
    if not isinstance(patch.display_name, Unset):
        model.display_name = display_name_of(patch.display_name)
    if not isinstance(patch.provider, Unset):
        model.provider = patch.provider
    if not isinstance(patch.upstream_model, Unset):
        model.upstream_model = checked_text(
            patch.upstream_model, "upstreamModel", MAX_UPSTREAM_LENGTH
        )
    if not isinstance(patch.context_window, Unset):
        model.context_window = patch.context_window
    if not isinstance(patch.max_output_tokens, Unset):
        model.max_output_tokens = patch.max_output_tokens
    for field, places, graphql_name in AMOUNTS:
        value = getattr(patch, field)
        if not isinstance(value, Unset):
            setattr(model, field, checked_amount(value, graphql_name, places))
    if not isinstance(patch.enabled, Unset):
        model.enabled = patch.enabled
    check_limits(model)
    if not isinstance(patch.fallback_model, Unset):
        model.fallback_model_id = await fallback_for(session, model, patch.fallback_model)

    if was_default and patch.is_default is False:
        raise ValidationFailed(
            "There must be a default model: make another model the default instead.",
            field="isDefault",
        )
    if was_default and not model.enabled:
        raise ValidationFailed(
            "The default model cannot be disabled; make another model the default first.",
            field="enabled",
        )
    if patch.is_default is True and not was_default:
        await take_default(session, model)
    await flush_or_conflict(session, "models")
    old, new = changed(before, await snapshot(session, model))
    await audit.record(session, actor, "model.update", "model", name, before=old, after=new)
    config_notices.after_catalog_change(session, broker)
    return model


async def delete_model(
    session: AsyncSession,
    actor: audit.Actor,
    name: str,
    *,
    replacement: str | None = None,
    broker: Broker,
) -> ModelDeletion:
    """Delete a model; dialogs and agents using it move to ``replacement`` (which also
    becomes the default if this one was). Without one, a model in use is refused."""
    model = await locked_model(session, name)
    target: Model | None = None
    if replacement is not None:
        if replacement == name:
            raise ValidationFailed("A model cannot replace itself.", field="replacement")
        target = await catalog.usable_model(session, replacement, field="replacement")
    # Soft-deleted dialogs count too: they keep their model (and their history) around.
    in_use = await session.scalar(
        select(func.count()).select_from(Dialog).where(Dialog.model_id == model.id)
    )
    dialogs = int(in_use or 0)
    if model.is_default and target is None:
        raise ValidationFailed(
            "The default model can only be deleted with a replacement, which becomes the default.",
            field="replacement",
        )
    if dialogs and target is None:
        raise Conflict(
            f"Model {name!r} is used by {dialogs} dialogs; name a replacement to move them to.",
            dialogs=dialogs,
        )
    before = await snapshot(session, model)
    agents = 0
    if target is not None:
        agents = await _move_users(session, model, target)
        if model.is_default:
            model.is_default = False
            await flush_or_conflict(session, "models")
            target.is_default = True
    await session.delete(model)
    await flush_or_conflict(session, "models")
    if target is not None:
        await session.refresh(target)  # the database may have cleared its fallback
    await audit.record(
        session,
        actor,
        "model.delete",
        "model",
        name,
        before=before,
        after=None
        if target is None
        else {"replacement": target.name, "moved_dialogs": dialogs, "moved_agents": agents},
    )
    config_notices.after_catalog_change(session, broker)
    return ModelDeletion(name, dialogs, agents, target)


async def _move_users(session: AsyncSession, model: Model, target: Model) -> int:
    """Point dialogs and agents at ``target``; returns how many agents moved.

    Parameters ``target`` would refuse are cleared (null: the model's own default) so
    every moved dialog can still be sent to. A dialog's ``updated_at`` orders the owner's
    list by activity, and this is none: it is kept.
    """
    ranges = PROVIDER_RANGES[target.provider]
    too_hot = Dialog.temperature > ranges.temperature_max
    agent_too_hot = Agent.temperature > ranges.temperature_max
    if ranges.temperature_min_exclusive:
        too_hot = or_(too_hot, Dialog.temperature <= 0)
        agent_too_hot = or_(agent_too_hot, Agent.temperature <= 0)
    of_model = Dialog.model_id == model.id
    keep = {"updated_at": Dialog.updated_at}
    statements = [
        update(Dialog).where(of_model, too_hot).values(temperature=None, **keep),
        update(Dialog)
        .where(of_model, Dialog.max_tokens > target.max_output_tokens)
        .values(max_tokens=None, **keep),
        update(Agent).where(Agent.model_id == model.id, agent_too_hot).values(temperature=None),
        update(Agent)
        .where(Agent.model_id == model.id, Agent.max_tokens > target.max_output_tokens)
        .values(max_tokens=None),
    ]
    if not ranges.supports_stop:
        statements.append(update(Dialog).where(of_model).values(stop=None, **keep))
    for statement in statements:
        await session.execute(statement.execution_options(synchronize_session=False))
    await session.execute(
        update(Dialog)
        .where(of_model)
        .values(model_id=target.id, **keep)
        .execution_options(synchronize_session=False)
    )
    agents = await session.scalar(
        select(func.count()).select_from(Agent).where(Agent.model_id == model.id)
    )
    await session.execute(
        update(Agent)
        .where(Agent.model_id == model.id)
        .values(model_id=target.id)
        .execution_options(synchronize_session=False)
    )
    return int(agents or 0)


async def reload_models(db: Database, broker: Broker, actor: audit.Actor) -> Reloaded:
    """What ``reloadModels`` and ``POST /api/v1/admin/models/reload`` both do: record the
    reload, then (after the commit) tell every instance to drop what it caches.

    It owns its unit of work, like the sweeper, so both callers stay one line.
    """
    async with db.transaction() as session:
        names = [m.name for m in await catalog.list_models(session, include_disabled=False)]
        await audit.record(session, actor, "model.reload", "model", None, after={"models": names})
        config_notices.after_catalog_change(session, broker)
    return Reloaded(names)
