"""What a dialog's answers used and cost, as one total (``Dialog.usage``)."""

from __future__ import annotations

from decimal import Decimal

import strawberry

from llm_gateway.schema.scalars import SafeInt
from llm_gateway.services.chat.dialog_usage import NONE, DialogTotals


@strawberry.type
class DialogUsage:
    """Every answer of the dialog, on every branch, whatever its outcome."""

    prompt_tokens: SafeInt = strawberry.field(
        description="All input tokens, the cache's reads and writes included."
    )
    cache_read_tokens: SafeInt = strawberry.field(
        description="Of promptTokens, read from the provider's prompt cache."
    )
    cache_write_tokens: SafeInt = strawberry.field(
        description="Of promptTokens, written to the provider's prompt cache."
    )
    completion_tokens: SafeInt
    reasoning_tokens: SafeInt = strawberry.field(
        description="Of completionTokens, spent reasoning (as far as providers report it)."
    )
    charged_tokens: SafeInt = strawberry.field(description="Tokens taken from the balance.")
    cost_usd: Decimal = strawberry.field(description="At the models' USD prices.")

    @staticmethod
    def from_totals(totals: DialogTotals | None) -> DialogUsage:
        """``totals`` None: a dialog without answers."""
        totals = totals or NONE
        return DialogUsage(
            prompt_tokens=totals.prompt_tokens,
            cache_read_tokens=totals.cache_read_tokens,
            cache_write_tokens=totals.cache_write_tokens,
            completion_tokens=totals.completion_tokens,
            reasoning_tokens=totals.reasoning_tokens,
            charged_tokens=totals.charged_tokens,
            cost_usd=totals.cost_usd,
        )
