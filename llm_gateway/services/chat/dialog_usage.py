"""A dialog's usage: the sums over its answers, for ``Dialog.usage`` (batched per page)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession

from llm_gateway.db.models import Message
from llm_gateway.enums import Role
from llm_gateway.services.money.holds import USD_PLACES


@dataclass(frozen=True, slots=True)
class DialogTotals:
    prompt_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    charged_tokens: int = 0
    cost_usd: Decimal = Decimal(0)


NONE = DialogTotals()
"""A dialog without answers."""
COUNTED = (
    "prompt_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "completion_tokens",
    "reasoning_tokens",
    "charged_tokens",
    "cost_usd",
)


async def totals_of_dialogs(
    session: AsyncSession, dialog_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, DialogTotals]:
    """Each dialog's answers summed, on every branch and whatever their outcome (what a
    stopped or failed answer was charged counts too); dialogs without any are left out."""

    sums = [func.coalesce(func.sum(getattr(Message, name)), 0).label(name) for name in COUNTED]
    rows = await session.execute(
        select(Message.dialog_id, *sums)
        .where(
            Message.dialog_id.in_(dialog_ids),
            # A literal, so the planners can match the partial index on assistant rows.
            Message.role == literal_column(f"'{Role.ASSISTANT.value}'"),
        )
        .group_by(Message.dialog_id)
    )
    return {
        row.dialog_id: DialogTotals(
            **{name: int(getattr(row, name)) for name in COUNTED if name != "cost_usd"},
            cost_usd=_usd(row.cost_usd),
        )
        for row in rows
    }


def _usd(total: object) -> Decimal:
    """A sum of USD amounts at the ledger's places (SQLite sums them as binary floats)."""
    value = Decimal(str(total))
    return value.quantize(USD_PLACES) if value else Decimal(0)
