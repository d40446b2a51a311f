"""Helpers for chat tests: sending over GraphQL, waiting for the generation, reading state."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from llm_gateway.db.engine import Database
from llm_gateway.db.models import Balance, Message, Reservation, TokenTransaction
from tests.factories import database_of
from tests.support import GraphQLClient, Result

SEND = """mutation($input: SendMessageInput!) {
  sendMessage(input: $input) {
    replayed
    userMessage { id role content status }
    assistantMessage { id role status parentId modelName }
  }
}"""


async def new_dialog(gql: GraphQLClient, user: int = 7, **fields: Any) -> str:
    result = await gql(
        "mutation($input: CreateDialogInput!) { createDialog(input: $input) { id } }",
        {"input": fields},
        user=user,
    )
    dialog_id: str = result.ok()["createDialog"]["id"]
    return dialog_id


async def send(
    gql: GraphQLClient, dialog_id: str, content: str = "Hello!", user: int = 7, **fields: Any
) -> Result:
    return await gql(
        SEND, {"input": {"dialogId": dialog_id, "content": content, **fields}}, user=user
    )


async def finished(app: Any, message_id: str) -> Message:
    """Wait for the (local) generation of ``message_id`` to end, then read the message."""
    await app.state.services.generations.wait(uuid.UUID(message_id))
    async with database_of(app).read() as session:
        row = await session.get(Message, uuid.UUID(message_id))
    assert row is not None
    return row


@dataclass(frozen=True)
class Money:
    balance: int
    reserved: int
    ledger_sum: int
    usage_rows: list[TokenTransaction]
    held: int
    reservation_states: list[str]


async def money(app: Any, user: int = 7) -> Money:
    return await money_in(database_of(app), user)


async def money_in(db: Database, user: int = 7) -> Money:
    async with db.read() as session:
        account = await session.get(Balance, user)
        assert account is not None
        ledger_sum = await session.scalar(
            select(func.coalesce(func.sum(TokenTransaction.amount), 0)).where(
                TokenTransaction.user_id == user
            )
        )
        usage = (
            await session.scalars(
                select(TokenTransaction).where(
                    TokenTransaction.user_id == user, TokenTransaction.kind == "usage"
                )
            )
        ).all()
        reservations = (
            await session.scalars(select(Reservation).where(Reservation.user_id == user))
        ).all()
    return Money(
        balance=account.balance,
        reserved=account.reserved,
        ledger_sum=int(ledger_sum or 0),
        usage_rows=list(usage),
        held=sum(r.amount for r in reservations if r.state == "held"),
        reservation_states=[r.state for r in reservations],
    )


async def assert_exact(app: Any, user: int = 7) -> Money:
    """The money invariants for one user, after everything settled."""
    return await assert_exact_in(database_of(app), user)


async def assert_exact_in(db: Database, user: int = 7) -> Money:
    """``assert_exact`` on a database the test reads directly (a gateway in another process)."""
    state = await money_in(db, user)
    assert state.balance == state.ledger_sum
    assert state.reserved == state.held == 0
    assert state.balance >= 0
    assert "held" not in state.reservation_states
    return state
