"""The model registry's drafts and checks: what staff may write, before it is written.

``models`` (create, update, delete) and ``agents`` share these: the field bounds the
columns impose, the default and fallback rules, the audit snapshot. Nothing here
commits, publishes or deletes; everything raises ``ValidationFailed`` (or ``Conflict``,
``NotFound``) before a bad value reaches the database.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from llm_gateway.db.models import Model
from llm_gateway.enums import Provider
from llm_gateway.errors import Conflict, NotFound, ValidationFailed
from llm_gateway.services.plumbing.patch import UNSET, Unset

PROVIDERS = tuple(Provider)
MAX_NAME_LENGTH = 100
MAX_DISPLAY_NAME_LENGTH = 200
MAX_UPSTREAM_LENGTH = 200
PRICE_PLACES = 6  # models.*_price_per_1k: NUMERIC(12, 6)
WEIGHT_PLACES = 4  # models.*_weight: NUMERIC(10, 4)
MAX_AMOUNT = Decimal(1_000_000)  # both columns keep six digits before the point
# A JSON number reaches us as a binary float turned Decimal (0.01 -> 0.01000000000000000020…):
# digits this far past the column's scale are that noise, not what staff meant.
_FLOAT_NOISE = Decimal("1e-12")

CACHE_RATIOS: dict[str, tuple[Decimal, Decimal]] = {
    Provider.ANTHROPIC: (Decimal("0.1"), Decimal("1.25")),
    Provider.OPENAI: (Decimal("0.1"), Decimal(1)),
}
"""Each provider's published price of a cache read and a cache write, as multiples of its
input price, for the current models (OpenAI's GPT-5 family reads at 0.1x and charges no
write premium); any other provider: 1x both. Staff set an older model's own."""


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
    # None: the provider's published ratio to the prompt's (``CACHE_RATIOS``).
    cache_read_weight: Decimal | None = None
    cache_write_weight: Decimal | None = None
    cache_read_price_per_1k: Decimal | None = None
    cache_write_price_per_1k: Decimal | None = None
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
    cache_read_weight: Decimal | Unset = UNSET
    cache_write_weight: Decimal | Unset = UNSET
    cache_read_price_per_1k: Decimal | Unset = UNSET
    cache_write_price_per_1k: Decimal | Unset = UNSET
    enabled: bool | Unset = UNSET
    is_default: bool | Unset = UNSET
    fallback_model: str | Unset | None = UNSET


# --- checks ---------------------------------------------------------------------------


def checked_text(value: str, field: str, maximum: int) -> str:
    value = value.strip()
    if not value or len(value) > maximum:
        raise ValidationFailed(f"{field} takes 1 to {maximum} characters.", field=field)
    return value


def checked_amount(value: Decimal, field: str, places: int) -> Decimal:
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


AMOUNTS = (
    ("prompt_price_per_1k", PRICE_PLACES, "promptPricePer1k"),
    ("completion_price_per_1k", PRICE_PLACES, "completionPricePer1k"),
    ("prompt_weight", WEIGHT_PLACES, "promptWeight"),
    ("completion_weight", WEIGHT_PLACES, "completionWeight"),
    ("cache_read_price_per_1k", PRICE_PLACES, "cacheReadPricePer1k"),
    ("cache_write_price_per_1k", PRICE_PLACES, "cacheWritePricePer1k"),
    ("cache_read_weight", WEIGHT_PLACES, "cacheReadWeight"),
    ("cache_write_weight", WEIGHT_PLACES, "cacheWriteWeight"),
)
"""A model's prices and weights: (column, decimal places, GraphQL name)."""


def amounts_of(draft: ModelDraft) -> dict[str, Decimal]:
    """A new model's prices and weights, checked; a cache price or weight left out is the
    prompt's at the provider's published ratio (``CACHE_RATIOS``), rounded up to the
    column's places so a cached token never costs less than published."""
    read, write = CACHE_RATIOS.get(draft.provider, (Decimal(1), Decimal(1)))
    values: dict[str, Decimal] = {}
    for column, places, graphql_name in AMOUNTS:
        given: Decimal | None = getattr(draft, column)
        if given is None:
            prompt = values["prompt_weight" if "weight" in column else "prompt_price_per_1k"]
            ratio = read if column.startswith("cache_read") else write
            step = Decimal(1).scaleb(-places)
            values[column] = (prompt * ratio).quantize(step, rounding=ROUND_CEILING)
        else:
            values[column] = checked_amount(given, graphql_name, places)
    return values


MAX_TOKENS_COLUMN = 2**31 - 1
"""models.context_window and max_output_tokens are INTEGER columns."""


def check_limits(model: Model) -> None:
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


async def fallback_for(session: AsyncSession, model: Model, name: str | None) -> int | None:
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


async def take_default(session: AsyncSession, model: Model) -> None:
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


async def locked_model(session: AsyncSession, name: str) -> Model:
    model = await session.scalar(select(Model).where(Model.name == name).with_for_update())
    if model is None:
        raise NotFound(f"Model {name!r} does not exist.", name=name)
    return model


async def snapshot(session: AsyncSession, model: Model) -> dict[str, Any]:
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
        "cache_read_price_per_1k": str(model.cache_read_price_per_1k),
        "cache_write_price_per_1k": str(model.cache_write_price_per_1k),
        "cache_read_weight": str(model.cache_read_weight),
        "cache_write_weight": str(model.cache_write_weight),
        "enabled": model.enabled,
        "is_default": model.is_default,
        "fallback_model": fallback,
    }


def changed(before: dict[str, Any], after: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Only what differs, on both sides, for the audit log."""
    keys = [key for key in after if before.get(key) != after[key]]
    return {key: before.get(key) for key in keys}, {key: after[key] for key in keys}


def display_name_of(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    return checked_text(value, "displayName", MAX_DISPLAY_NAME_LENGTH)
