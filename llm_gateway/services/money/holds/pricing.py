"""What a model charges per kind of token, in balance tokens and in USD (README: money,
prompt caching).

A charge is ``ceil(uncached·w_prompt + cache_write·w_write + cache_read·w_read +
completion·w_completion)``; the USD cost is the same sum at the USD prices per 1,000
tokens. A hold is priced before anyone knows how much of the prompt the provider will
read from or write to its cache, so it prices every prompt token at the dearest of the
three input weights: the charge never exceeds the hold because of caching.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING

from llm_gateway.providers.base import Usage

if TYPE_CHECKING:
    from llm_gateway.db.models import Model

USD_PLACES = Decimal("0.00000001")


@dataclass(frozen=True, slots=True)
class Pricing:
    """One model's balance weights per token and USD prices per 1k tokens.

    A cache weight or price left None is the prompt's (no discount, no premium).
    """

    model_name: str
    prompt_weight: Decimal
    completion_weight: Decimal
    prompt_price_per_1k: Decimal
    completion_price_per_1k: Decimal
    cache_read_weight: Decimal | None = None
    cache_write_weight: Decimal | None = None
    cache_read_price_per_1k: Decimal | None = None
    cache_write_price_per_1k: Decimal | None = None

    @staticmethod
    def of(model: Model) -> Pricing:
        return Pricing(
            model_name=model.name,
            prompt_weight=Decimal(model.prompt_weight),
            completion_weight=Decimal(model.completion_weight),
            prompt_price_per_1k=Decimal(model.prompt_price_per_1k),
            completion_price_per_1k=Decimal(model.completion_price_per_1k),
            cache_read_weight=Decimal(model.cache_read_weight),
            cache_write_weight=Decimal(model.cache_write_weight),
            cache_read_price_per_1k=Decimal(model.cache_read_price_per_1k),
            cache_write_price_per_1k=Decimal(model.cache_write_price_per_1k),
        )

    @property
    def read_weight(self) -> Decimal:
        return self.prompt_weight if self.cache_read_weight is None else self.cache_read_weight

    @property
    def write_weight(self) -> Decimal:
        return self.prompt_weight if self.cache_write_weight is None else self.cache_write_weight

    @property
    def read_price(self) -> Decimal:
        price = self.cache_read_price_per_1k
        return self.prompt_price_per_1k if price is None else price

    @property
    def write_price(self) -> Decimal:
        price = self.cache_write_price_per_1k
        return self.prompt_price_per_1k if price is None else price

    @property
    def hold_prompt_weight(self) -> Decimal:
        """What a hold prices each prompt token at: the dearest input weight."""
        return max(self.prompt_weight, self.read_weight, self.write_weight)

    def charge(self, usage: Usage) -> int:
        """Tokens taken from the balance for ``usage`` (before the cap at the hold)."""
        exact = (
            usage.uncached_tokens * self.prompt_weight
            + usage.cache_write_tokens * self.write_weight
            + usage.cache_read_tokens * self.read_weight
            + usage.completion_tokens * self.completion_weight
        )
        return math.ceil(exact)

    def hold(self, prompt_tokens: int, output_cap: int) -> int:
        """Tokens to hold for a prompt and an output cap, whatever the cache does."""
        exact = prompt_tokens * self.hold_prompt_weight + output_cap * self.completion_weight
        return math.ceil(exact)

    def cost_usd(self, usage: Usage) -> Decimal:
        cost = (
            usage.uncached_tokens * self.prompt_price_per_1k
            + usage.cache_write_tokens * self.write_price
            + usage.cache_read_tokens * self.read_price
            + usage.completion_tokens * self.completion_price_per_1k
        ) / 1000
        return cost.quantize(USD_PLACES, rounding=ROUND_HALF_UP)
