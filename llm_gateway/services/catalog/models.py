"""Staff curate the model registry: create, update, delete, reload.

No instance caches models: every request reads them from the database, so a committed
change is what every instance serves next. What instances do cache is provider
credentials (``config.CredentialCache``); so every change here, and every reload, is
followed after its commit by a notice on ``CONFIG_CHANNEL`` (``notify_changed``) that
makes each instance re-read them at once.

Invariants kept here: names are unique; at most one model is the default, it is
enabled, and it stays the default until another takes its place; a model's fallback is
another model that does not fall back to it; a model still used by dialogs is deleted
only by moving them to an enabled replacement.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from llm_gateway.db.engine import Database
from llm_gateway.db.models import Agent, Dialog, Model
from llm_gateway.db.models.catalog import PROVIDERS
from llm_gateway.errors import Conflict, NotFound, ValidationFailed
from llm_gateway.services.catalog import listing as catalog
from llm_gateway.services.catalog.params import PROVIDER_RANGES
from llm_gateway.services.plumbing.broker import Broker
from llm_gateway.services.plumbing.patch import UNSET, Unset
from llm_gateway.services.staff import audit
from llm_gateway.services.staff import runtime_settings as config

MODELS_CHANGED_KEY = "models"
"""The ``key`` of the CONFIG_CHANNEL notice sent after a registry change."""

MAX_NAME_LENGTH = 100
MAX_DISPLAY_NAME_LENGTH = 200
MAX_UPSTREAM_LENGTH = 200
PRICE_PLACES = 6  # models.*_price_per_1k: NUMERIC(12, 6)
WEIGHT_PLACES = 4  # models.*_weight: NUMERIC(10, 4)
MAX_AMOUNT = Decimal(1_000_000)  # both columns keep six digits before the point
# A JSON number reaches us as a binary float turned Decimal (0.01 -> 0.01000000000000000020…):
# digits this far past the column's scale are that noise, not what staff meant.
_FLOAT_NOISE = Decimal("1e-12")


@dataclass(frozen=True, slots=True)
class ModelDraft:
    name: str
    provider: str
    upstream_model: str
    context_window: int
    max_output_tokens: int
    display_name: str | None = None
    prompt_price_per_1k: Decimal = Decimal(0)
    completion_price_per_1k: Decimal = Decimal(0)
    prompt_weight: Decimal = Decimal(1)
    completion_weight: Decimal = Decimal(1)
    enabled: bool = True
    is_default: bool = False
    fallback_model: str | None = None  # a model's name


@dataclass(frozen=True, slots=True)
class ModelPatch:
    display_name: str | Unset | None = UNSET
    provider: str | Unset = UNSET
    upstream_model: str | Unset = UNSET
    context_window: int | Unset = UNSET
    max_output_tokens: int | Unset = UNSET
    prompt_price_per_1k: Decimal | Unset = UNSET
    completion_price_per_1k: Decimal | Unset = UNSET
    prompt_weight: Decimal | Unset = UNSET
    completion_weight: Decimal | Unset = UNSET
    enabled: bool | Unset = UNSET
    is_default: bool | Unset = UNSET
    fallback_model: str | Unset | None = UNSET


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


# --- checks ---------------------------------------------------------------------------


def _text(value: str, field: str, maximum: int) -> str:
    value = value.strip()
    if not value or len(value) > maximum:
        raise ValidationFailed(f"{field} takes 1 to {maximum} characters.", field=field)
    return value


def _amount(value: Decimal, field: str, places: int) -> Decimal:
    """A price or weight as the column stores it; refused rather than silently rounded."""
    if not value.is_finite() or value < 0 or value >= MAX_AMOUNT:
        raise ValidationFailed(
            f"{field} must be a number from 0 to below {MAX_AMOUNT}.", field=field
        )
    exact = value.quantize(Decimal(1).scaleb(-places))
    if abs(value - exact) > _FLOAT_NOISE:
        raise ValidationFailed(
            f"{field} takes at most {places} decimal places.", field=field, places=places
        )
    return exact


MAX_TOKENS_COLUMN = 2**31 - 1
"""models.context_window and max_output_tokens are INTEGER columns."""


def _check_limits(model: Model) -> None:
    if model.provider not in PROVIDERS:
        raise ValidationFailed(f"provider must be one of {', '.join(PROVIDERS)}.", field="provider")
    if not 0 < model.context_window <= MAX_TOKENS_COLUMN:
        raise ValidationFailed(
            f"contextWindow must be between 1 and {MAX_TOKENS_COLUMN:,}.", field="contextWindow"
        )
    if not 0 < model.max_output_tokens <= model.context_window:
        raise ValidationFailed(
            f"maxOutputTokens must be between 1 and the context window ({model.context_window}).",
            field="maxOutputTokens",
        )


async def _fallback_for(session: AsyncSession, model: Model, name: str | None) -> int | None:
    """The id of ``name`` as ``model``'s fallback: another model that does not fall back
    to ``model`` (a longer loop is harmless: the chat tries one fallback only)."""
    if name is None:
        return None
    if name == model.name:
        raise ValidationFailed("A model cannot be its own fallback.", field="fallbackModel")
    target = await session.scalar(select(Model).where(Model.name == name))
    if target is None:
        raise ValidationFailed(f"No model named {name!r}.", field="fallbackModel")
    if model.id is not None and target.fallback_model_id == model.id:
        raise ValidationFailed(
            f"{name!r} falls back to {model.name!r}; the two would loop.", field="fallbackModel"
        )
    return target.id


async def _take_default(session: AsyncSession, model: Model) -> None:
    """Make ``model`` the only default: the others' flag is cleared first, because a
    partial unique index allows one default row at any moment."""
    if not model.enabled:
        raise ValidationFailed("The default model must be enabled.", field="isDefault")
    others = Model.is_default if model.id is None else (Model.is_default & (Model.id != model.id))
    await session.execute(update(Model).where(others).values(is_default=False))
    model.is_default = True


async def flush_or_conflict(session: AsyncSession, what: str) -> None:
    """Flush; a constraint the checks passed but the database refused is a concurrent
    change (the same name, another default), reported as CONFLICT, not a crash."""
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict(f"The {what} changed concurrently; try again.") from None


async def _locked(session: AsyncSession, name: str) -> Model:
    model = await session.scalar(select(Model).where(Model.name == name).with_for_update())
    if model is None:
        raise NotFound(f"Model {name!r} does not exist.", name=name)
    return model


async def _snapshot(session: AsyncSession, model: Model) -> dict[str, Any]:
    """The audit log's view of a model: plain JSON, Decimals as strings."""
    fallback = (
        await session.scalar(select(Model.name).where(Model.id == model.fallback_model_id))
        if model.fallback_model_id is not None
        else None
    )
    return {
        "name": model.name,
        "display_name": model.display_name,
        "provider": model.provider,
        "upstream_model": model.upstream_model,
        "context_window": model.context_window,
        "max_output_tokens": model.max_output_tokens,
        "prompt_price_per_1k": str(model.prompt_price_per_1k),
        "completion_price_per_1k": str(model.completion_price_per_1k),
        "prompt_weight": str(model.prompt_weight),
        "completion_weight": str(model.completion_weight),
        "enabled": model.enabled,
        "is_default": model.is_default,
        "fallback_model": fallback,
    }


def changed(before: dict[str, Any], after: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Only what differs, on both sides, for the audit log."""
    keys = [key for key in after if before.get(key) != after[key]]
    return {key: before.get(key) for key in keys}, {key: after[key] for key in keys}


# --- mutations ------------------------------------------------------------------------


async def create_model(session: AsyncSession, actor: audit.Actor, draft: ModelDraft) -> Model:
    name = _text(draft.name, "name", MAX_NAME_LENGTH)
    if await session.scalar(select(Model.id).where(Model.name == name)) is not None:
        raise Conflict(f"A model named {name!r} already exists.", name=name)
    model = Model(
        name=name,
        display_name=_display_name(draft.display_name),
        provider=draft.provider,
        upstream_model=_text(draft.upstream_model, "upstreamModel", MAX_UPSTREAM_LENGTH),
        context_window=draft.context_window,
        max_output_tokens=draft.max_output_tokens,
        prompt_price_per_1k=_amount(draft.prompt_price_per_1k, "promptPricePer1k", PRICE_PLACES),
        completion_price_per_1k=_amount(
            draft.completion_price_per_1k, "completionPricePer1k", PRICE_PLACES
        ),
        prompt_weight=_amount(draft.prompt_weight, "promptWeight", WEIGHT_PLACES),
        completion_weight=_amount(draft.completion_weight, "completionWeight", WEIGHT_PLACES),
        enabled=draft.enabled,
        is_default=False,
    )
    _check_limits(model)
    model.fallback_model_id = await _fallback_for(session, model, draft.fallback_model)
    if draft.is_default:
        await _take_default(session, model)
    session.add(model)
    await flush_or_conflict(session, "models")
    await audit.record(
        session, actor, "model.create", "model", name, after=await _snapshot(session, model)
    )
    return model


def _display_name(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    return _text(value, "displayName", MAX_DISPLAY_NAME_LENGTH)


async def update_model(
    session: AsyncSession, actor: audit.Actor, name: str, patch: ModelPatch
) -> Model:
    model = await _locked(session, name)
    before = await _snapshot(session, model)
    was_default = model.is_default
    if not isinstance(patch.display_name, Unset):
        model.display_name = _display_name(patch.display_name)
    if not isinstance(patch.provider, Unset):
        model.provider = patch.provider
    if not isinstance(patch.upstream_model, Unset):
        model.upstream_model = _text(patch.upstream_model, "upstreamModel", MAX_UPSTREAM_LENGTH)
    if not isinstance(patch.context_window, Unset):
        model.context_window = patch.context_window
    if not isinstance(patch.max_output_tokens, Unset):
        model.max_output_tokens = patch.max_output_tokens
    for field, places, graphql_name in (
        ("prompt_price_per_1k", PRICE_PLACES, "promptPricePer1k"),
        ("completion_price_per_1k", PRICE_PLACES, "completionPricePer1k"),
        ("prompt_weight", WEIGHT_PLACES, "promptWeight"),
        ("completion_weight", WEIGHT_PLACES, "completionWeight"),
    ):
        value = getattr(patch, field)
        if not isinstance(value, Unset):
            setattr(model, field, _amount(value, graphql_name, places))
    if not isinstance(patch.enabled, Unset):
        model.enabled = patch.enabled
    _check_limits(model)
    if not isinstance(patch.fallback_model, Unset):
        model.fallback_model_id = await _fallback_for(session, model, patch.fallback_model)

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
        await _take_default(session, model)
    await flush_or_conflict(session, "models")
    old, new = changed(before, await _snapshot(session, model))
    await audit.record(session, actor, "model.update", "model", name, before=old, after=new)
    return model


async def delete_model(
    session: AsyncSession, actor: audit.Actor, name: str, *, replacement: str | None = None
) -> ModelDeletion:
    """Delete a model; dialogs and agents using it move to ``replacement`` (which also
    becomes the default if this one was). Without one, a model in use is refused."""
    model = await _locked(session, name)
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
    before = await _snapshot(session, model)
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
    await notify_changed(broker)
    return Reloaded(names)


async def notify_changed(broker: Broker) -> None:
    """Tell every instance the registry changed (call after the commit)."""
    await config.notify_changed(broker, MODELS_CHANGED_KEY)
