"""Balance reads in Core statements built once: the account's columns and what it spent
in its limit windows. A completion reads the balance it left with these in its finishing
transaction, on the hot path; ``Account`` is what a balance view is made of, a ``Balance``
row or a Core row alike.
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol, cast

from sqlalchemy import Table, bindparam, case, func, select

from llm_gateway.db.models import Balance, TokenTransaction
from llm_gateway.enums import LedgerKind

_LEDGER = cast(Table, TokenTransaction.__table__)
_BALANCES = cast(Table, Balance.__table__)
USED_SINCE = (
    select(
        _LEDGER.c.user_id,
        func.sum(_LEDGER.c.amount),
        func.sum(case((_LEDGER.c.created_at >= bindparam("day"), _LEDGER.c.amount), else_=0)),
    )
    .where(
        _LEDGER.c.user_id.in_(bindparam("users", expanding=True)),
        _LEDGER.c.kind.in_((LedgerKind.USAGE, LedgerKind.REFUND)),
        _LEDGER.c.created_at >= bindparam("month"),
    )
    .group_by(_LEDGER.c.user_id)
)
ACCOUNT = select(
    _BALANCES.c.user_id,
    _BALANCES.c.balance,
    _BALANCES.c.reserved,
    _BALANCES.c.lifetime_used,
    _BALANCES.c.daily_limit,
    _BALANCES.c.monthly_limit,
    _BALANCES.c.created_at,
).where(_BALANCES.c.user_id == bindparam("user"))
"""Built once: a completion reads the balance it left with these (Core rows, no ORM)."""


class Account(Protocol):
    """What a balance view is made of: a ``Balance`` row, or a Core row of ``ACCOUNT``."""

    @property
    def user_id(self) -> int: ...
    @property
    def balance(self) -> int: ...
    @property
    def reserved(self) -> int: ...
    @property
    def lifetime_used(self) -> int: ...
    @property
    def daily_limit(self) -> int | None: ...
    @property
    def monthly_limit(self) -> int | None: ...
    @property
    def created_at(self) -> dt.datetime: ...
