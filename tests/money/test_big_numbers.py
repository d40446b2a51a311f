"""Balances, amounts and user ids past 2^31, as a client sees them (the SafeInt scalar).

A top-up that took a balance past 2^31 used to commit and then fail to answer (so a retry
credited again), and every later read of that balance failed too. Now every such number
is a SafeInt: exact up to 2^53 - 1, refused beyond it before anything is written.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from pydantic import ValidationError
from sqlalchemy import func, select, update

from llm_gateway.app import create_app
from llm_gateway.bounds import MAX_SAFE_INTEGER
from llm_gateway.db.models import AuditLog, Balance, TokenTransaction
from llm_gateway.settings import Settings
from tests.admin_support import AdminClient, flashes
from tests.chat_support import SEND, finished, money, new_dialog, send
from tests.conftest import STAFF_LOGIN, admin_settings, make_settings
from tests.factories import database_of
from tests.fakes.omnimap_back import OmnimapBack
from tests.live import LiveServer, graphql_socket, live_server
from tests.support import GraphQLClient, Result, token

STAFF_ID = 900
BIG_USER = 3003
BIG_TOP_UP = 2**31 - 1
BIG_ID = 2**40
NEAR_MAX = MAX_SAFE_INTEGER - 100

ME = "{ me { userId balance { balance reserved available lifetimeUsed dailyUsed } } }"
TOP_UP = """mutation($input: TopUpBalanceInput!) {
  topUpBalance(input: $input) {
    replayed
    transaction { userId amount kind balanceAfter }
    balance { balance reserved available }
  }
}"""
ADJUST = """mutation($input: AdjustBalanceInput!) {
  adjustBalance(input: $input) { balance { balance } }
}"""
LEDGER = "{ transactions(first: 10) { edges { node { userId amount kind balanceAfter } } } }"
USER_BALANCE = """query($userId: SafeInt!) {
  userBalance(userId: $userId) { userId balance { balance reserved available } }
}"""
EVENTS = """subscription($dialogId: UUID!) {
  messageEvents(dialogId: $dialogId) {
    __typename
    ... on MessageCompleted {
      message { status chargedTokens }
      usage { chargedTokens }
      balance { balance reserved available lifetimeUsed }
    }
    ... on MessageFailed { code errorMessage }
  }
}"""


def staff_top_up(user_id: int, amount: int, **extra: Any) -> dict[str, Any]:
    return {"input": {"userId": user_id, "amount": amount, "reason": "qa", **extra}}


async def ledger_state(app: Any, user_id: int) -> tuple[int, int, int]:
    """(balance, sum of the ledger, ledger rows) of one user, from the database."""
    async with database_of(app).read() as session:
        account = await session.get(Balance, user_id)
        assert account is not None
        total, rows = (
            await session.execute(
                select(func.coalesce(func.sum(TokenTransaction.amount), 0), func.count()).where(
                    TokenTransaction.user_id == user_id
                )
            )
        ).one()
    return account.balance, int(total), int(rows)


async def audit_count(app: Any) -> int:
    async with database_of(app).read() as session:
        return int(await session.scalar(select(func.count()).select_from(AuditLog)) or 0)


@asynccontextmanager
async def gateway(settings: Settings) -> AsyncIterator[tuple[Any, GraphQLClient]]:
    """The app with other settings, and a GraphQL client for it."""
    application = create_app(settings)
    async with LifespanManager(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as http:
            yield application, GraphQLClient(http)


def assert_validation_failed(result: Result, case: str) -> None:
    assert result.status < 500, case
    assert result.data is None, (case, result.body)
    assert result.codes == ["VALIDATION_FAILED"], (case, result.body)
    assert "SafeInt" in result.errors[0]["message"], case


# --- a balance past 2^31 ----------------------------------------------------------------


async def test_a_top_up_past_2_31_answers_and_every_read_works(
    gql: GraphQLClient, app: Any
) -> None:
    result = await gql(
        TOP_UP, staff_top_up(BIG_USER, BIG_TOP_UP, idempotencyKey="qa-1"), user=STAFF_ID, staff=True
    )
    expected = 10_000 + BIG_TOP_UP
    assert result.ok()["topUpBalance"] == {
        "replayed": False,
        "transaction": {
            "userId": BIG_USER,
            "amount": BIG_TOP_UP,
            "kind": "TOPUP",
            "balanceAfter": expected,
        },
        "balance": {"balance": expected, "reserved": 0, "available": expected},
    }
    # A client retrying with its key is answered, not credited again.
    again = await gql(
        TOP_UP, staff_top_up(BIG_USER, BIG_TOP_UP, idempotencyKey="qa-1"), user=STAFF_ID, staff=True
    )
    assert again.ok()["topUpBalance"]["replayed"] is True
    assert again.ok()["topUpBalance"]["balance"]["balance"] == expected

    me = (await gql(ME, user=BIG_USER)).ok()["me"]
    assert me["userId"] == BIG_USER
    assert me["balance"] == {
        "balance": expected,
        "reserved": 0,
        "available": expected,
        "lifetimeUsed": 0,
        "dailyUsed": 0,
    }
    ledger = (await gql(LEDGER, user=BIG_USER)).ok()["transactions"]["edges"]
    assert [e["node"] for e in ledger] == [
        {"userId": BIG_USER, "amount": BIG_TOP_UP, "kind": "TOPUP", "balanceAfter": expected},
        {"userId": BIG_USER, "amount": 10_000, "kind": "GRANT", "balanceAfter": 10_000},
    ]
    seen = await gql(USER_BALANCE, {"userId": BIG_USER}, user=STAFF_ID, staff=True)
    assert seen.ok()["userBalance"] == {
        "userId": BIG_USER,
        "balance": {"balance": expected, "reserved": 0, "available": expected},
    }
    assert await ledger_state(app, BIG_USER) == (expected, expected, 2)


async def chat_until_done(server: LiveServer, user: int) -> dict[str, Any]:
    """Send one message to the mock model and return the event that ended the answer."""
    auth = {"Authorization": f"Bearer {token(user)}"}
    async with graphql_socket(server, auth) as socket:
        created = await socket.execute("mutation { createDialog(input: {}) { id } }")
        dialog_id = created["data"]["createDialog"]["id"]
        events = socket.events(await socket.subscribe(EVENTS, {"dialogId": dialog_id}))
        async with httpx.AsyncClient(base_url=server.base_url) as client:
            response = await client.post(
                "/graphql",
                json={
                    "query": SEND,
                    "variables": {"input": {"dialogId": dialog_id, "content": "Hi"}},
                },
                headers=auth,
            )
        assert "errors" not in response.json(), response.json()
        async for payload in events:
            assert "errors" not in payload, payload
            event: dict[str, Any] = payload["data"]["messageEvents"]
            if event["__typename"] in ("MessageCompleted", "MessageFailed"):
                return event
    raise AssertionError("the subscription ended before the answer did")


@pytest.mark.parametrize(("user", "top_up"), [(BIG_USER, BIG_TOP_UP), (BIG_ID, 0)])
async def test_a_chat_completes_with_a_big_balance_or_user_id(
    settings: Settings, user: int, top_up: int
) -> None:
    async with live_server(settings) as server:
        if top_up:
            async with httpx.AsyncClient(base_url=server.base_url) as client:
                response = await client.post(
                    "/graphql",
                    json={"query": TOP_UP, "variables": staff_top_up(user, top_up)},
                    headers={"Authorization": f"Bearer {token(STAFF_ID, staff=True)}"},
                )
            assert "errors" not in response.json(), response.json()
        done = await chat_until_done(server, user)
    assert done["__typename"] == "MessageCompleted", done
    charged = done["usage"]["chargedTokens"]
    assert charged > 0
    assert done["message"] == {"status": "COMPLETE", "chargedTokens": charged}
    left = 10_000 + top_up - charged
    assert done["balance"] == {
        "balance": left,
        "reserved": 0,
        "available": left,
        "lifetimeUsed": charged,
    }


# --- the edge of the range --------------------------------------------------------------


async def test_a_top_up_past_2_53_is_refused_before_anything_is_written(
    database_url: str,
) -> None:
    settings = make_settings(database_url, initial_token_balance=NEAR_MAX)
    async with gateway(settings) as (app, gql):
        assert (await gql(ME, user=BIG_USER)).ok()["me"]["balance"]["balance"] == NEAR_MAX
        audited = await audit_count(app)

        over = await gql(TOP_UP, staff_top_up(BIG_USER, 101), user=STAFF_ID, staff=True)
        assert over.data is None
        assert over.codes == ["VALIDATION_FAILED"]
        assert over.errors[0]["extensions"] == {
            "code": "VALIDATION_FAILED",
            "field": "amount",
            "maximum": 100,
        }
        adjust = {"input": {"userId": BIG_USER, "amount": 101, "reason": "qa"}}
        refused = await gql(ADJUST, adjust, user=STAFF_ID, staff=True)
        assert refused.codes == ["VALIDATION_FAILED"]
        assert await ledger_state(app, BIG_USER) == (NEAR_MAX, NEAR_MAX, 1)
        assert await audit_count(app) == audited

        # Up to the edge itself is fine, and reads back exactly.
        full = await gql(TOP_UP, staff_top_up(BIG_USER, 100), user=STAFF_ID, staff=True)
        assert full.ok()["topUpBalance"]["balance"]["balance"] == MAX_SAFE_INTEGER
        assert (await gql(ME, user=BIG_USER)).ok()["me"]["balance"]["available"] == (
            MAX_SAFE_INTEGER
        )
        one_more = await gql(TOP_UP, staff_top_up(BIG_USER, 1), user=STAFF_ID, staff=True)
        assert one_more.codes == ["VALIDATION_FAILED"]
        assert await ledger_state(app, BIG_USER) == (MAX_SAFE_INTEGER, MAX_SAFE_INTEGER, 2)


async def test_the_admin_top_up_form_is_refused_past_2_53_too(
    database_url: str, omnimap: OmnimapBack
) -> None:
    settings = admin_settings(database_url, omnimap, initial_token_balance=NEAR_MAX)
    application = create_app(settings)
    transport = httpx.ASGITransport(app=application)
    async with (
        LifespanManager(application),
        httpx.AsyncClient(transport=transport, base_url="https://gateway.test") as http,
    ):
        admin = AdminClient(http)
        assert (await admin.login(*STAFF_LOGIN)).status_code == 303
        page = "/admin/users/901"
        await admin.submit(page, f"{page}/topup", amount="100", reason="fill up", back=page)
        response = await admin.submit(page, f"{page}/topup", amount="1", reason="qa", back=page)
        assert response.headers["location"] == page
        shown = flashes((await admin.get(page)).text)
        assert any("above 9007199254740991" in text for text in shown), shown
        assert await ledger_state(application, 901) == (MAX_SAFE_INTEGER, MAX_SAFE_INTEGER, 2)


OUT_OF_RANGE: list[Any] = [2**53, -(2**53), 1.5, "12"]


async def test_inputs_outside_the_range_are_validation_failed(gql: GraphQLClient, app: Any) -> None:
    await gql(ME, user=BIG_USER)
    for value in OUT_OF_RANGE:
        for field in ("userId", "amount"):
            values = {"userId": BIG_USER, "amount": 5, "reason": "qa", field: value}
            as_variable = await gql(TOP_UP, {"input": values}, user=STAFF_ID, staff=True)
            assert_validation_failed(as_variable, f"${field} = {value!r}")
            inline = ", ".join(f"{name}: {json.dumps(v)}" for name, v in values.items())
            as_literal = await gql(
                f"mutation {{ topUpBalance(input: {{{inline}}}) {{ replayed }} }}",
                user=STAFF_ID,
                staff=True,
            )
            assert_validation_failed(as_literal, f"{field}: {value!r}")
        by_variable = await gql(USER_BALANCE, {"userId": value}, user=STAFF_ID, staff=True)
        assert_validation_failed(by_variable, f"userBalance($userId = {value!r})")
        by_literal = await gql(
            f"{{ userBalance(userId: {json.dumps(value)}) {{ userId }} }}",
            user=STAFF_ID,
            staff=True,
        )
        assert_validation_failed(by_literal, f"userBalance(userId: {value!r})")
    assert await ledger_state(app, BIG_USER) == (10_000, 10_000, 1)


async def test_the_largest_safe_user_id_is_a_valid_input(gql: GraphQLClient) -> None:
    missing = await gql(USER_BALANCE, {"userId": MAX_SAFE_INTEGER}, user=STAFF_ID, staff=True)
    assert missing.codes == ["NOT_FOUND"]
    result = await gql(TOP_UP, staff_top_up(MAX_SAFE_INTEGER, 5), user=STAFF_ID, staff=True)
    assert result.ok()["topUpBalance"]["transaction"]["userId"] == MAX_SAFE_INTEGER


# --- user ids from tokens ---------------------------------------------------------------


async def test_a_token_for_user_2_40_works_end_to_end(gql: GraphQLClient, app: Any) -> None:
    me = (await gql(ME, user=BIG_ID)).ok()["me"]
    assert me["userId"] == BIG_ID
    assert me["balance"]["balance"] == 10_000
    dialog_id = await new_dialog(gql, user=BIG_ID, title="big")
    listed = await gql("{ dialogs { edges { node { id title } } } }", user=BIG_ID)
    assert listed.ok()["dialogs"]["edges"] == [{"node": {"id": dialog_id, "title": "big"}}]
    sent = (await send(gql, dialog_id, "Hello, mock!", user=BIG_ID)).ok()["sendMessage"]
    answer = await finished(app, sent["assistantMessage"]["id"])
    assert answer.status == "complete"
    assert answer.charged_tokens

    after = (await gql(ME, user=BIG_ID)).ok()["me"]["balance"]
    assert after["balance"] == after["available"] == 10_000 - answer.charged_tokens
    assert after["lifetimeUsed"] == answer.charged_tokens
    kinds = [
        e["node"]["kind"] for e in (await gql(LEDGER, user=BIG_ID)).ok()["transactions"]["edges"]
    ]
    assert kinds == ["USAGE", "GRANT"]
    staff_view = await gql(USER_BALANCE, {"userId": BIG_ID}, user=STAFF_ID, staff=True)
    assert staff_view.ok()["userBalance"]["userId"] == BIG_ID
    state = await money(app, BIG_ID)
    assert state.balance == state.ledger_sum == after["balance"]


@pytest.mark.parametrize("user_id", [2**53, 2**63 - 1])
async def test_a_token_for_a_user_id_past_2_53_is_unauthenticated(
    gql: GraphQLClient, user_id: int
) -> None:
    result = await gql(ME, user=user_id)
    assert result.status < 500
    assert result.data is None
    assert result.codes == ["UNAUTHENTICATED"]
    assert "user_id" in result.errors[0]["message"]


# --- the guards behind it ---------------------------------------------------------------


async def test_a_stored_number_past_2_53_is_never_sent_rounded(
    gql: GraphQLClient, app: Any
) -> None:
    """Only a broken database holds one; the field fails (masked) rather than lie."""
    await gql(ME, user=BIG_USER)
    async with database_of(app).transaction() as session:
        await session.execute(
            update(Balance).where(Balance.user_id == BIG_USER).values(balance=2**53 + 1)
        )
    result = await gql(ME, user=BIG_USER)
    assert result.data is None
    assert result.codes == ["INTERNAL_SERVER_ERROR"]
    assert result.errors[0]["path"] == ["me", "balance", "balance"]
    text = json.dumps(result.body)
    assert str(2**53) not in text  # neither rounded
    assert str(2**53 + 1) not in text  # nor exact, for a client to round


def test_the_initial_balance_setting_stays_in_range() -> None:
    url = "sqlite+aiosqlite:///:memory:"
    assert make_settings(url, initial_token_balance=MAX_SAFE_INTEGER).initial_token_balance == (
        MAX_SAFE_INTEGER
    )
    with pytest.raises(ValidationError, match="initial_token_balance"):
        make_settings(url, initial_token_balance=MAX_SAFE_INTEGER + 1)
