"""Reading a user's balance (the money rules themselves arrive with the money issue)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from llm_gateway.db.models import Balance


@dataclass(frozen=True, slots=True)
class BalanceView:
    balance: int
    reserved: int
    daily_limit: int | None
    monthly_limit: int | None
    lifetime_used: int

    @property
    def available(self) -> int:
        return self.balance - self.reserved


async def balance_of(session: AsyncSession, user_id: int) -> BalanceView:
    row = await session.get(Balance, user_id)
    if row is None:
        return BalanceView(0, 0, None, None, 0)
    return BalanceView(
        balance=row.balance,
        reserved=row.reserved,
        daily_limit=row.daily_limit,
        monthly_limit=row.monthly_limit,
        lifetime_used=row.lifetime_used,
    )
