"""What a running answer writes: its partial text now and then, its end exactly once.

The final write (settle or release, the message's final state) is retried a few times;
if it still fails, the lease lapses and any instance's sweeper recovers the answer. Only
after it committed are the terminal event and the balance notice sent.
"""

from __future__ import annotations

import asyncio
import logging
from typing import cast

from sqlalchemy import Table, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from llm_gateway.db.engine import Database
from llm_gateway.db.models import Dialog
from llm_gateway.enums import MessageStatus
from llm_gateway.errors import NotFound
from llm_gateway.observability.metrics import GatewayMetrics
from llm_gateway.services.chat.generation import outcomes
from llm_gateway.services.chat.generation.outcomes import Outcome
from llm_gateway.services.chat.generation.running_answer import Running, publish_deltas
from llm_gateway.services.chat.message_wire import message_payload
from llm_gateway.services.money.balance_wire import view_payload
from llm_gateway.services.money.balances import MoneyPolicy, existing_balance
from llm_gateway.services.plumbing import broker_events as wire
from llm_gateway.services.plumbing.broker import Broker
from llm_gateway.services.plumbing.broker_events import Wire

logger = logging.getLogger("llm_gateway.generation")

FINISH_ATTEMPTS = 3
_DIALOGS = cast(Table, Dialog.__table__)
_LIVE_DIALOG = select(_DIALOGS.c.id).where(
    _DIALOGS.c.id == bindparam("dialog"),
    _DIALOGS.c.user_id == bindparam("user"),
    _DIALOGS.c.deleted_at.is_(None),
)


async def save_partial(db: Database, running: Running) -> None:
    """Save the text so far; a missed flush only widens what a crash could lose."""
    try:
        async with db.transaction() as session:
            await outcomes.save_partial(session, running.job.message_id, running.text)
    except Exception:
        logger.exception("could not save partial text of %s", running.job.message_id)


async def finish(
    db: Database,
    broker: Broker,
    running: Running,
    outcome: Outcome,
    metrics: GatewayMetrics,
    policy: MoneyPolicy,
) -> None:
    """Store the answer's end, then tell its subscribers and the user's balance watchers
    (and count it in ``metrics``, once committed). A completion carries the balance its
    charge left, read in the same transaction, so no subscriber has to read it."""
    job = running.job
    assert job.dialog_id is not None, "an answer in a dialog"
    await publish_deltas(broker, running)  # the last coalesced text before the end
    for attempt in range(FINISH_ATTEMPTS):
        try:
            async with db.transaction() as session:
                finished = await outcomes.finish(session, job, outcome, metrics)
                message = finished.message
                balance = await _balance_after(session, job.user_id, finished, policy)
            break
        except Exception:
            logger.exception("finishing %s failed (attempt %d)", job.message_id, attempt + 1)
            if attempt == FINISH_ATTEMPTS - 1:
                return  # the sweeper recovers it when the lease expires
            await asyncio.sleep(0.2 * (attempt + 1))
    # The finished row rides along, so subscribers need not read it back.
    row = message_payload(message)
    end: wire.AnswerEnd
    if message.status == MessageStatus.COMPLETE:
        end = wire.MessageCompleted(job.dialog_id, job.message_id, row, balance)
    else:
        code, text = message.error_code or "FAILED", message.error_message or ""
        end = wire.MessageFailed(job.dialog_id, job.message_id, code, text, row)
    await broker.send(end)
    await broker.send(wire.BalanceChanged(job.user_id, "usage"))


async def _balance_after(
    session: AsyncSession, user_id: int, finished: outcomes.Finished, policy: MoneyPolicy
) -> Wire | None:
    """The balance a completed answer left, while its dialog is still the user's and live
    (None otherwise: a subscriber then reads, and meets NOT_FOUND for a deleted dialog).
    The finish's touch of the dialog found whether it is live; an answer that had ended
    already touched nothing, and its dialog is read."""
    message = finished.message
    if message.status != MessageStatus.COMPLETE:
        return None
    live = finished.dialog_live
    if live is None:
        values = {"dialog": message.dialog_id, "user": user_id}
        live = await session.scalar(_LIVE_DIALOG, values) is not None
    if not live:
        return None
    try:
        return view_payload(await existing_balance(session, user_id, policy))
    except NotFound:
        return None
