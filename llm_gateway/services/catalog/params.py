"""Generation parameters and the ranges each provider accepts.

A dialog (and later an agent or a single call) may set temperature, top_p, max_tokens
and stop sequences; they are checked here against the dialog's model so that what is
stored is always something the provider will take.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from llm_gateway.db.models import Model
from llm_gateway.enums import Provider
from llm_gateway.errors import ValidationFailed

MAX_STOP_SEQUENCES = 4
MAX_STOP_LENGTH = 100


@dataclass(frozen=True, slots=True)
class ProviderRanges:
    temperature_max: float
    temperature_min_exclusive: bool = False
    supports_stop: bool = True


# Keyed by Provider members; a row's plain ``str`` finds them (a member is its string).
PROVIDER_RANGES: dict[str, ProviderRanges] = {
    Provider.OPENAI: ProviderRanges(temperature_max=2.0),
    Provider.ANTHROPIC: ProviderRanges(temperature_max=1.0),
    # GigaChat wants temperature > 0 and has no stop sequences.
    Provider.GIGACHAT: ProviderRanges(
        temperature_max=2.0, temperature_min_exclusive=True, supports_stop=False
    ),
    Provider.MOCK: ProviderRanges(temperature_max=2.0),
}


@dataclass(frozen=True, slots=True)
class GenerationParams:
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: list[str] | None = None


def validate_params(params: GenerationParams, model: Model) -> GenerationParams:
    """Return the params unchanged if ``model``'s provider accepts them, else raise."""
    ranges = PROVIDER_RANGES[model.provider]
    if params.temperature is not None:
        t = params.temperature
        low_ok = t > 0 if ranges.temperature_min_exclusive else t >= 0
        if not math.isfinite(t) or not low_ok or t > ranges.temperature_max:
            bound = "above 0" if ranges.temperature_min_exclusive else "from 0"
            raise ValidationFailed(
                f"temperature must be {bound} to {ranges.temperature_max} for {model.name}.",
                field="temperature",
            )
    if params.top_p is not None and (not math.isfinite(params.top_p) or not 0 < params.top_p <= 1):
        raise ValidationFailed("top_p must be above 0 and at most 1.", field="topP")
    if params.max_tokens is not None and not 1 <= params.max_tokens <= model.max_output_tokens:
        raise ValidationFailed(
            f"max_tokens must be between 1 and {model.max_output_tokens} for {model.name}.",
            field="maxTokens",
            maximum=model.max_output_tokens,
        )
    if params.stop is not None:
        if params.stop and not ranges.supports_stop:
            raise ValidationFailed(f"{model.name} does not support stop sequences.", field="stop")
        if len(params.stop) > MAX_STOP_SEQUENCES or any(
            not s or len(s) > MAX_STOP_LENGTH for s in params.stop
        ):
            raise ValidationFailed(
                f"stop takes at most {MAX_STOP_SEQUENCES} non-empty sequences of at most "
                f"{MAX_STOP_LENGTH} characters.",
                field="stop",
            )
    return params
