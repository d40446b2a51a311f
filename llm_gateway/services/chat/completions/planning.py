"""What a completion asks for: its model, params, counted prompt and targets.

The checks are the chat's (``catalog.params``) under OpenAI's parameter names, plus what
only the API has: an API key restricted to some models, and parameters (tools, response
formats, seeds) that a provider cannot honour, refused by name rather than dropped.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from llm_gateway.db.models import Model
from llm_gateway.errors import Forbidden, NotFound, ValidationFailed
from llm_gateway.providers.base import ChatMessage, ProviderRequest
from llm_gateway.providers.capabilities import unsupported_params
from llm_gateway.providers.tokens import count_request
from llm_gateway.services.catalog import listing as catalog
from llm_gateway.services.catalog.params import GenerationParams, validate_params
from llm_gateway.services.chat.planning import Target
from llm_gateway.services.money.holds import KeyBudget, Pricing

# OpenAI's names for the params the chat validates under its own.
PARAM_NAMES = {"temperature": "temperature", "topP": "top_p", "maxTokens": "max_tokens"}


@dataclass(frozen=True, slots=True)
class ApiCaller:
    """Who calls ``/v1``: a user, through one of their API keys or with an access token."""

    user_id: int
    key_id: uuid.UUID | None = None
    models: tuple[str, ...] | None = None
    daily_token_limit: int | None = None

    @property
    def budget(self) -> KeyBudget | None:
        return KeyBudget(self.key_id, self.daily_token_limit) if self.key_id else None


@dataclass(frozen=True, slots=True)
class CompletionRequest:
    """A chat-completions request, its shape already checked (``llm_gateway.api``)."""

    model: str
    messages: tuple[ChatMessage, ...]
    stream: bool = False
    include_usage: bool = False
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: tuple[str, ...] | None = None
    user: str | None = None
    tools: tuple[dict[str, Any], ...] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    response_format: dict[str, Any] | None = None
    seed: int | None = None


@dataclass(frozen=True, slots=True)
class CompletionPlan:
    model: Model
    prompt_tokens: int
    output_cap: int
    targets: tuple[Target, ...]


async def allowed_model(session: AsyncSession, caller: ApiCaller, name: str) -> Model:
    """An enabled model by public name that this caller may use; NOT_FOUND or FORBIDDEN."""
    try:
        model = await catalog.get_model(session, name, include_disabled=False)
    except NotFound:
        raise NotFound(f"The model '{name}' does not exist.", field="model") from None
    if caller.models is not None and model.name not in caller.models:
        raise Forbidden(f"This API key may not use the model '{name}'.", field="model")
    return model


async def plan_completion(
    session: AsyncSession, caller: ApiCaller, request: CompletionRequest
) -> CompletionPlan:
    """Check the request against its model and count its prompt exactly, before any hold."""
    model = await allowed_model(session, caller, request.model)
    try:
        params = validate_params(
            GenerationParams(
                request.temperature,
                request.top_p,
                request.max_tokens,
                list(request.stop) if request.stop is not None else None,
            ),
            model,
        )
    except ValidationFailed as exc:
        field = exc.details.get("field")
        exc.details["field"] = PARAM_NAMES.get(field, field) if isinstance(field, str) else None
        raise
    cap = params.max_tokens or model.max_output_tokens
    upstream = ProviderRequest(
        model=model.upstream_model,
        messages=list(request.messages),
        max_tokens=cap,
        temperature=params.temperature,
        top_p=params.top_p,
        stop=params.stop or None,
        user=request.user,
        tools=request.tools,
        tool_choice=request.tool_choice,
        parallel_tool_calls=request.parallel_tool_calls,
        response_format=request.response_format,
        seed=request.seed,
    )
    refused = unsupported_params(model.provider, upstream)
    if refused:
        raise ValidationFailed(
            f"The model '{model.name}' does not support the parameter '{refused[0]}'.",
            field=refused[0],
        )
    prompt_tokens = count_request(upstream, model.provider)
    if prompt_tokens + 1 > model.context_window:
        raise ValidationFailed(
            f"This model's maximum context length is {model.context_window} tokens; the "
            f"messages have {prompt_tokens}.",
            field="messages",
            reason="context_length_exceeded",
        )
    cap = min(cap, model.context_window - prompt_tokens)
    upstream = replace(upstream, max_tokens=cap)
    targets = [Target(model.name, model.provider, Pricing.of(model), upstream)]
    fallback = await _fallback(session, model)
    if fallback is not None:
        request_b = replace(
            upstream,
            model=fallback.upstream_model,
            max_tokens=min(cap, fallback.max_output_tokens),
        )
        # A fallback that cannot honour the request is no fallback.
        if not unsupported_params(fallback.provider, request_b) and (
            prompt_tokens + 1 <= fallback.context_window
        ):
            targets.append(
                Target(fallback.name, fallback.provider, Pricing.of(fallback), request_b)
            )
    return CompletionPlan(model, prompt_tokens, cap, tuple(targets))


async def _fallback(session: AsyncSession, model: Model) -> Model | None:
    if model.fallback_model_id is None:
        return None
    fallback = (await catalog.models_by_ids(session, [model.fallback_model_id])).get(
        model.fallback_model_id
    )
    if fallback is None or not fallback.enabled or fallback.id == model.id:
        return None
    return fallback
