"""Balance notices: a change to a balance tells its subscribers, once it is committed."""

from __future__ import annotations

from functools import partial

from sqlalchemy.ext.asyncio import AsyncSession

from llm_gateway.db.engine import after_commit
from llm_gateway.services.plumbing.broker import Broker
from llm_gateway.services.plumbing.broker_events import BalanceChanged


def after_change(session: AsyncSession, broker: Broker | None, user_id: int, reason: str) -> None:
    """Send ``BalanceChanged`` after this unit of work commits; nothing if it rolls back.

    ``broker`` None: nobody is told (seeding, scripts, money tests without subscribers).
    """
    if broker is not None:
        after_commit(session, partial(broker.send, BalanceChanged(user_id, str(reason))))
