"""The caller, users as staff see them, and balances."""

from __future__ import annotations

import datetime as dt

import strawberry

from llm_gateway.schema.scalars import SafeInt
from llm_gateway.services.money.balances import BalanceView


@strawberry.type(name="Balance")
class BalanceType:
    balance: SafeInt = strawberry.field(description="Tokens owned.")
    reserved: SafeInt = strawberry.field(description="Tokens held for generations in flight.")
    available: SafeInt = strawberry.field(description="balance - reserved: what can be spent now.")
    daily_limit: SafeInt | None = strawberry.field(description="Null: no daily limit.")
    daily_used: SafeInt
    daily_remaining: SafeInt | None
    daily_resets_at: dt.datetime
    monthly_limit: SafeInt | None = strawberry.field(description="Null: no monthly limit.")
    monthly_used: SafeInt
    monthly_remaining: SafeInt | None
    monthly_resets_at: dt.datetime
    lifetime_used: SafeInt

    @staticmethod
    def from_view(view: BalanceView) -> BalanceType:
        return BalanceType(
            balance=view.balance,
            reserved=view.reserved,
            available=view.available,
            daily_limit=view.daily.limit,
            daily_used=view.daily.used,
            daily_remaining=view.daily.remaining(view.reserved),
            daily_resets_at=view.daily.resets_at,
            monthly_limit=view.monthly.limit,
            monthly_used=view.monthly.used,
            monthly_remaining=view.monthly.remaining(view.reserved),
            monthly_resets_at=view.monthly.resets_at,
            lifetime_used=view.lifetime_used,
        )


@strawberry.type
class Me:
    user_id: SafeInt
    is_staff: bool
    balance: BalanceType


@strawberry.type
class UserAccount:
    """A user the gateway knows (one who has a balance), as staff see them."""

    user_id: SafeInt
    balance: BalanceType
    created_at: dt.datetime | None

    @staticmethod
    def from_view(view: BalanceView) -> UserAccount:
        return UserAccount(
            user_id=view.user_id, balance=BalanceType.from_view(view), created_at=view.created_at
        )
