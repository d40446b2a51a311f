"""The caller and their balance."""

from __future__ import annotations

import strawberry

from llm_gateway.services.balances import BalanceView


@strawberry.type(name="Balance")
class BalanceType:
    balance: int = strawberry.field(description="Tokens owned.")
    reserved: int = strawberry.field(description="Tokens held for generations in flight.")
    available: int = strawberry.field(description="balance - reserved: what can be spent now.")
    daily_limit: int | None
    monthly_limit: int | None
    lifetime_used: int

    @staticmethod
    def from_view(view: BalanceView) -> BalanceType:
        return BalanceType(
            balance=view.balance,
            reserved=view.reserved,
            available=view.available,
            daily_limit=view.daily_limit,
            monthly_limit=view.monthly_limit,
            lifetime_used=view.lifetime_used,
        )


@strawberry.type
class Me:
    user_id: int
    is_staff: bool
    balance: BalanceType
