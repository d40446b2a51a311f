"""The caller."""

from __future__ import annotations

from llm_gateway.schema.context import Info
from llm_gateway.schema.money.accounts import BalanceType, Me
from llm_gateway.services.money import balances


async def me(info: Info) -> Me:
    """Who is calling, with their balance (a new user's account is opened here)."""
    ctx = info.context
    principal = ctx.principal
    async with ctx.services.db.transaction() as session:
        view = await balances.balance_of(session, principal.user_id, ctx.services.policy)
    return Me(
        user_id=principal.user_id,
        is_staff=principal.is_staff,
        balance=BalanceType.from_view(view),
    )
