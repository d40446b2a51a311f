"""The accounts of a known set of users, read at once (the admin's username search).

A username search matches up to fifty users on omnimap-back; their accounts are read by
one statement rather than one lookup each.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from llm_gateway.db.models import Balance
from llm_gateway.errors import ValidationFailed

MAX_ID_DIGITS = 18
"""As ``balances.list_accounts`` takes a searched id: longer ones may not fit a BIGINT."""


async def accounts_of(session: AsyncSession, user_ids: Sequence[int]) -> list[Balance]:
    """The accounts among ``user_ids`` (those users who have one), by user id.

    An id ``list_accounts`` would refuse as a search term is refused the same way, so
    that the admin's search says so rather than the database failing on it.
    """
    for user_id in user_ids:
        term = str(user_id)
        if not (term.isdigit() and len(term) <= MAX_ID_DIGITS):
            raise ValidationFailed("search takes a user id.", field="search")
    if not user_ids:
        return []
    query = select(Balance).where(Balance.user_id.in_(user_ids)).order_by(Balance.user_id)
    return list((await session.scalars(query)).all())
