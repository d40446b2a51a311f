"""Balances and the ledger over GraphQL, as users and staff see them."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from llm_gateway.db.models import AuditLog
from tests.factories import database_of
from tests.support import GraphQLClient

STAFF_ID = 900
ME = """{ me { userId balance { balance reserved available dailyLimit dailyUsed dailyRemaining
  dailyResetsAt monthlyLimit monthlyUsed monthlyRemaining monthlyResetsAt lifetimeUsed } } }"""
TOP_UP = """
mutation($input: TopUpBalanceInput!) {
  topUpBalance(input: $input) {
    replayed
    transaction { id amount kind balanceAfter reason userId actorId }
    balance { balance available }
  }
}"""
ADJUST = """
mutation($input: AdjustBalanceInput!) {
  adjustBalance(input: $input) { transaction { amount kind balanceAfter } balance { balance } }
}"""
LIMITS = """
mutation($input: SetBalanceLimitsInput!) {
  setBalanceLimits(input: $input) { userId balance { dailyLimit monthlyLimit } }
}"""
LEDGER = """
query($kind: TransactionKind, $after: String) {
  transactions(first: 2, kind: $kind, after: $after) {
    edges { node { amount kind balanceAfter reason } }
    pageInfo { hasNextPage endCursor }
  }
}"""


async def staff(gql: GraphQLClient, query: str, variables: dict[str, Any]) -> Any:
    return await gql(query, variables, user=STAFF_ID, staff=True)


async def audit_rows(app: Any) -> list[AuditLog]:
    async with database_of(app).read() as session:
        return list((await session.scalars(select(AuditLog).order_by(AuditLog.id))).all())


async def test_a_new_user_is_granted_the_initial_balance_once(gql: GraphQLClient) -> None:
    first = (await gql(ME, user=7)).ok()["me"]
    again = (await gql(ME, user=7)).ok()["me"]
    assert first == again
    balance = first["balance"]
    assert balance["balance"] == balance["available"] == 10_000
    assert balance["reserved"] == 0
    assert balance["dailyLimit"] is None
    assert balance["dailyRemaining"] is None
    assert balance["dailyUsed"] == 0
    ledger = (await gql(LEDGER, user=7)).ok()["transactions"]["edges"]
    assert [e["node"]["kind"] for e in ledger] == ["GRANT"]
    assert ledger[0]["node"]["amount"] == 10_000


async def test_top_up_shows_at_once_in_balance_and_ledger(gql: GraphQLClient, app: Any) -> None:
    await gql(ME, user=7)
    result = await staff(
        gql, TOP_UP, {"input": {"userId": 7, "amount": 500, "reason": "support ticket 12"}}
    )
    payload = result.ok()["topUpBalance"]
    assert payload["replayed"] is False
    assert payload["transaction"] == {
        "id": payload["transaction"]["id"],
        "amount": 500,
        "kind": "TOPUP",
        "balanceAfter": 10_500,
        "reason": "support ticket 12",
        "userId": 7,
        "actorId": STAFF_ID,
    }
    assert payload["balance"] == {"balance": 10_500, "available": 10_500}

    me = (await gql(ME, user=7)).ok()["me"]["balance"]
    assert me["balance"] == 10_500
    ledger = (await gql(LEDGER, user=7)).ok()["transactions"]
    assert [e["node"]["kind"] for e in ledger["edges"]] == ["TOPUP", "GRANT"]
    staff_view = (
        await staff(
            gql,
            "query { userTransactions(userId: 7) { edges { node { amount kind } } } }",
            {},
        )
    ).ok()
    assert staff_view["userTransactions"]["edges"][0]["node"] == {"amount": 500, "kind": "TOPUP"}

    [row] = await audit_rows(app)
    assert (row.actor_id, row.action, row.resource_type, row.resource_id) == (
        STAFF_ID,
        "balance.topup",
        "balance",
        "7",
    )
    assert row.before == {"balance": 10_000, "reserved": 0}
    assert row.after is not None
    assert row.after["balance"] == 10_500
    assert row.request_id


async def test_top_up_of_an_unknown_user_opens_their_account(gql: GraphQLClient) -> None:
    payload = (
        await staff(gql, TOP_UP, {"input": {"userId": 55, "amount": 1, "reason": "welcome"}})
    ).ok()["topUpBalance"]
    # The grant comes first, then the top-up.
    assert payload["balance"]["balance"] == 10_001


async def test_a_repeated_idempotency_key_changes_nothing(gql: GraphQLClient, app: Any) -> None:
    variables = {"input": {"userId": 7, "amount": 300, "reason": "r", "idempotencyKey": "t-1"}}
    first = (await staff(gql, TOP_UP, variables)).ok()["topUpBalance"]
    second = (await staff(gql, TOP_UP, variables)).ok()["topUpBalance"]
    assert second["replayed"] is True
    assert second["transaction"]["id"] == first["transaction"]["id"]
    assert second["balance"]["balance"] == 10_300
    assert len(await audit_rows(app)) == 1
    other = {"input": {"userId": 7, "amount": 301, "reason": "r", "idempotencyKey": "t-1"}}
    assert (await staff(gql, TOP_UP, other)).codes == ["CONFLICT"]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"amount": 0}, "amount"),
        ({"amount": -5}, "amount"),
        ({"reason": "  "}, "reason"),
        ({"idempotencyKey": ""}, "idempotencyKey"),
        ({"userId": 0}, "userId"),
    ],
)
async def test_top_up_validation(gql: GraphQLClient, fields: dict[str, Any], field: str) -> None:
    variables = {"input": {"userId": 7, "amount": 10, "reason": "r", **fields}}
    result = await staff(gql, TOP_UP, variables)
    assert result.codes == ["VALIDATION_FAILED"]
    assert result.errors[0]["extensions"]["field"] == field


async def test_adjust_may_subtract_but_never_below_zero(gql: GraphQLClient) -> None:
    await gql(ME, user=7)
    taken = (
        await staff(gql, ADJUST, {"input": {"userId": 7, "amount": -9_000, "reason": "refund"}})
    ).ok()["adjustBalance"]
    assert taken["transaction"] == {"amount": -9_000, "kind": "ADJUSTMENT", "balanceAfter": 1_000}
    too_much = await staff(
        gql, ADJUST, {"input": {"userId": 7, "amount": -1_001, "reason": "oops"}}
    )
    assert too_much.codes == ["VALIDATION_FAILED"]
    assert too_much.errors[0]["extensions"]["available"] == 1_000
    assert (await gql(ME, user=7)).ok()["me"]["balance"]["balance"] == 1_000


async def test_limits_are_set_reported_and_removed(gql: GraphQLClient, app: Any) -> None:
    set_both = {"input": {"userId": 7, "dailyLimit": 100, "monthlyLimit": 2_000}}
    account = (await staff(gql, LIMITS, set_both)).ok()["setBalanceLimits"]
    assert account["balance"] == {"dailyLimit": 100, "monthlyLimit": 2_000}
    me = (await gql(ME, user=7)).ok()["me"]["balance"]
    assert (me["dailyRemaining"], me["monthlyRemaining"]) == (100, 2_000)
    assert (
        me["dailyResetsAt"] < me["monthlyResetsAt"]
        or me["dailyResetsAt"] == (me["monthlyResetsAt"])
    )
    only_daily = {"input": {"userId": 7, "dailyLimit": None}}
    account = (await staff(gql, LIMITS, only_daily)).ok()["setBalanceLimits"]
    assert account["balance"] == {"dailyLimit": None, "monthlyLimit": 2_000}
    assert [r.action for r in await audit_rows(app)] == ["balance.set_limits"] * 2
    bad = await staff(gql, LIMITS, {"input": {"userId": 7, "dailyLimit": -1}})
    assert bad.codes == ["VALIDATION_FAILED"]


async def test_ledger_pages_and_filters(gql: GraphQLClient) -> None:
    await gql(ME, user=7)
    for amount in (1, 2, 3):
        await staff(gql, TOP_UP, {"input": {"userId": 7, "amount": amount, "reason": "r"}})
    page = (await gql(LEDGER, user=7)).ok()["transactions"]
    assert [e["node"]["amount"] for e in page["edges"]] == [3, 2]
    rest = (await gql(LEDGER, {"after": page["pageInfo"]["endCursor"]}, user=7)).ok()
    assert [e["node"]["amount"] for e in rest["transactions"]["edges"]] == [1, 10_000]
    grants = (await gql(LEDGER, {"kind": "GRANT"}, user=7)).ok()["transactions"]["edges"]
    assert [e["node"]["kind"] for e in grants] == ["GRANT"]
    # Users see only their own ledger (user 8 has not used the service yet).
    assert (await gql(LEDGER, user=8)).ok()["transactions"]["edges"] == []


async def test_staff_lists_users_with_balances(gql: GraphQLClient) -> None:
    for user in (3, 1, 2):
        await gql(ME, user=user)
    query = """query($after: String, $search: String) {
      users(first: 2, after: $after, search: $search) {
        edges { node { userId balance { balance } } } pageInfo { hasNextPage endCursor }
      } }"""
    page = (await staff(gql, query, {})).ok()["users"]
    assert [e["node"]["userId"] for e in page["edges"]] == [1, 2]
    rest = (await staff(gql, query, {"after": page["pageInfo"]["endCursor"]})).ok()["users"]
    assert [e["node"]["userId"] for e in rest["edges"]] == [3]
    found = (await staff(gql, query, {"search": "2"})).ok()["users"]["edges"]
    assert [e["node"]["userId"] for e in found] == [2]
    one = await staff(gql, "{ userBalance(userId: 3) { userId balance { balance } } }", {})
    assert one.ok()["userBalance"] == {"userId": 3, "balance": {"balance": 10_000}}
    assert (await staff(gql, "{ userBalance(userId: 404) { userId } }", {})).codes == ["NOT_FOUND"]


@pytest.mark.parametrize(
    "query",
    [
        "{ users { edges { node { userId } } } }",
        "{ userBalance(userId: 1) { userId } }",
        "{ userTransactions(userId: 1) { edges { node { id } } } }",
        'mutation { topUpBalance(input: {userId: 1, amount: 5, reason: "x"}) { replayed } }',
        'mutation { adjustBalance(input: {userId: 1, amount: 5, reason: "x"}) { replayed } }',
        "mutation { setBalanceLimits(input: {userId: 1, dailyLimit: 5}) { userId } }",
        "{ transactions { edges { node { costUsd } } } }",
    ],
)
async def test_staff_operations_are_forbidden_to_users(
    gql: GraphQLClient, app: Any, query: str
) -> None:
    await staff(gql, TOP_UP, {"input": {"userId": 1, "amount": 5, "reason": "seed"}})
    before = len(await audit_rows(app))
    result = await gql(query, user=1)
    assert "FORBIDDEN" in result.codes
    assert len(await audit_rows(app)) == before
    assert (await gql(ME, user=1)).ok()["me"]["balance"]["balance"] == 10_005
