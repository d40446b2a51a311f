"""What a send will ask for, decided before anything is written.

The model and the merged generation params (agent < dialog < call), the targets to try
(the primary, then its fallback) and the job handed to the ``GenerationManager`` once the
send's transaction commits. ``sending`` runs the flows that use them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace

from sqlalchemy.ext.asyncio import AsyncSession

from llm_gateway.db.models import Agent, Dialog, Model
from llm_gateway.enums import Provider
from llm_gateway.errors import ValidationFailed
from llm_gateway.providers.base import ProviderRequest
from llm_gateway.services.catalog import listing as catalog
from llm_gateway.services.catalog.params import PROVIDER_RANGES, GenerationParams, validate_params
from llm_gateway.services.money.holds import Pricing


@dataclass(frozen=True, slots=True)
class Overrides:
    """Per-call choices that win over the dialog's and the agent's."""

    model: str | None = None
    params: GenerationParams = field(default_factory=GenerationParams)


@dataclass(frozen=True, slots=True)
class Target:
    """One model to try: the primary, or its fallback."""

    model_name: str
    provider: str
    pricing: Pricing
    request: ProviderRequest

    def with_max_tokens(self, max_tokens: int) -> Target:
        return replace(self, request=replace(self.request, max_tokens=max_tokens))


@dataclass(frozen=True, slots=True)
class GenerationJob:
    """One answer to generate: a dialog's message, or (``dialog_id`` None) an API request
    whose ``message_id`` is the request's id."""

    message_id: uuid.UUID
    dialog_id: uuid.UUID | None
    user_id: int
    reservation_id: uuid.UUID
    prompt_tokens: int
    targets: tuple[Target, ...]


def merge_params(
    agent: Agent | None, dialog: Dialog, overrides: GenerationParams, model: Model
) -> GenerationParams:
    """agent < dialog < call: the most specific value that is set wins.

    An agent is a preset for any model, so its values are fitted to this one (its
    max_tokens capped, its temperature clamped to the provider's range); values the user
    set on the dialog or the call are validated as given.
    """
    ranges = PROVIDER_RANGES[model.provider]
    merged = GenerationParams(
        temperature=(
            min(agent.temperature, ranges.temperature_max)
            if agent and agent.temperature is not None
            else None
        ),
        top_p=agent.top_p if agent else None,
        max_tokens=(
            min(agent.max_tokens, model.max_output_tokens)
            if agent and agent.max_tokens is not None
            else None
        ),
    )
    for layer in (
        GenerationParams(dialog.temperature, dialog.top_p, dialog.max_tokens, dialog.stop),
        overrides,
    ):
        merged = GenerationParams(
            temperature=layer.temperature if layer.temperature is not None else merged.temperature,
            top_p=layer.top_p if layer.top_p is not None else merged.top_p,
            max_tokens=layer.max_tokens if layer.max_tokens is not None else merged.max_tokens,
            stop=layer.stop if layer.stop is not None else merged.stop,
        )
    return merged


@dataclass(frozen=True, slots=True)
class Plan:
    """What a send asks for: the model, the merged and checked params, the system prompt."""

    model: Model
    params: GenerationParams
    system_prompt: str | None


async def plan_for(session: AsyncSession, dialog: Dialog, overrides: Overrides) -> Plan:
    """The call's model (or the dialog's, which must still be enabled) and its params."""
    if overrides.model is not None:
        model = await catalog.usable_model(session, overrides.model)
    else:
        model = (await catalog.models_by_ids(session, [dialog.model_id]))[dialog.model_id]
        if not model.enabled:
            raise ValidationFailed(
                f"Model {model.name!r} is disabled; choose another model for this dialog.",
                field="model",
            )
    agent = await session.get(Agent, dialog.agent_id) if dialog.agent_id else None
    params = validate_params(merge_params(agent, dialog, overrides.params, model), model)
    system_prompt = dialog.system_prompt or (agent.system_prompt if agent else None) or None
    return Plan(model, params, system_prompt)


async def targets_for(
    session: AsyncSession, plan: Plan, messages: ProviderRequest
) -> tuple[Target, ...]:
    """The primary model, then its fallback when one is set and usable."""
    primary = Target(plan.model.name, plan.model.provider, Pricing.of(plan.model), messages)
    targets = [primary]
    if plan.model.fallback_model_id is not None:
        fallback = (await catalog.models_by_ids(session, [plan.model.fallback_model_id])).get(
            plan.model.fallback_model_id
        )
        if fallback is not None and fallback.enabled and fallback.id != plan.model.id:
            request = replace(
                messages,
                model=fallback.upstream_model,
                max_tokens=min(messages.max_tokens, fallback.max_output_tokens),
                stop=messages.stop if fallback.provider != Provider.GIGACHAT else None,
            )
            targets.append(Target(fallback.name, fallback.provider, Pricing.of(fallback), request))
    return tuple(targets)
