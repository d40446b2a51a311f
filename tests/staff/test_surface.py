"""Every staff field, found by walking the schema: refused to users, audited for staff.

A staff field without an entry in SAMPLES fails the walk, so a new staff operation
cannot ship without being exercised here.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from llm_gateway.db.models import AuditLog
from llm_gateway.schema.build import schema
from llm_gateway.schema.permissions import IsStaff
from tests.factories import database_of
from tests.support import GraphQLClient

STAFF_ID = 900

# field -> (document, variables); mutations must leave exactly one audit row.
SAMPLES: dict[str, tuple[str, dict[str, Any]]] = {
    "users": ("{ users { edges { node { userId } } } }", {}),
    "userBalance": ("{ userBalance(userId: 7) { userId } }", {}),
    "userTransactions": ("{ userTransactions(userId: 7) { edges { node { id } } } }", {}),
    "systemConfig": ("{ systemConfig { key } }", {}),
    "topUpBalance": (
        'mutation { topUpBalance(input: {userId: 7, amount: 5, reason: "r"}) { replayed } }',
        {},
    ),
    "adjustBalance": (
        'mutation { adjustBalance(input: {userId: 7, amount: -5, reason: "r"}) { replayed } }',
        {},
    ),
    "setBalanceLimits": (
        "mutation { setBalanceLimits(input: {userId: 7, dailyLimit: 500}) { userId } }",
        {},
    ),
    "setConfig": ('mutation { setConfig(input: {key: "A_KEY", value: "v"}) { key } }', {}),
    "deleteConfig": ('mutation { deleteConfig(input: {key: "SEEDED"}) { key } }', {}),
    "allDialogs": ("{ allDialogs { edges { node { id userId } } } }", {}),
    "auditLogs": ("{ auditLogs { edges { node { id action } } } }", {}),
    "allApiKeys": ("{ allApiKeys(userId: 7) { edges { node { id userId } } } }", {}),
    "usageStats": (
        '{ usageStats(from: "2026-03-01", to: "2026-03-03", groupBy: DAY) { total { requests } } }',
        {},
    ),
    "createModel": (
        'mutation { createModel(input: {name: "m-new", provider: OPENAI, upstreamModel: "x", '
        "contextWindow: 1000, maxOutputTokens: 100}) { name } }",
        {},
    ),
    "updateModel": (
        'mutation { updateModel(input: {name: "gpt-4-turbo", displayName: "GPT"}) { name } }',
        {},
    ),
    "deleteModel": ('mutation { deleteModel(input: {name: "claude-3-opus"}) { name } }', {}),
    "reloadModels": ("mutation { reloadModels { status models } }", {}),
    "createAgent": ('mutation { createAgent(input: {name: "a-new"}) { id } }', {}),
    "updateAgent": ('mutation { updateAgent(input: {id: 1, description: "d"}) { id } }', {}),
    "deleteAgent": ("mutation { deleteAgent(input: {id: 4}) { id } }", {}),
}


def staff_fields() -> dict[str, str]:
    """``field name -> root type`` for every root field guarded by IsStaff."""
    found: dict[str, str] = {}
    for root in ("Query", "Mutation", "Subscription"):
        definition = schema.get_type_by_name(root)
        if definition is None:
            continue
        for field in definition.fields:  # type: ignore[union-attr]
            if IsStaff in list(field.permission_classes):
                found[field.graphql_name or _camel(field.name)] = root
    return found


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def test_every_staff_field_is_exercised_here() -> None:
    fields = staff_fields()
    assert set(fields) == set(SAMPLES), "add the new staff fields to SAMPLES: " + ", ".join(
        sorted(set(fields) - set(SAMPLES))
    )


async def _prepare(gql: GraphQLClient) -> None:
    await gql("{ me { userId } }", user=7)  # user 7 exists with a balance
    await gql(
        'mutation { setConfig(input: {key: "SEEDED", value: "x"}) { key } }',
        user=STAFF_ID,
        staff=True,
    )


async def _audit_count(app: Any) -> int:
    async with database_of(app).read() as session:
        return int(await session.scalar(select(func.count()).select_from(AuditLog)) or 0)


@pytest.mark.parametrize("field", sorted(SAMPLES))
async def test_users_are_refused_and_nothing_is_audited(
    gql: GraphQLClient, app: Any, field: str
) -> None:
    await _prepare(gql)
    before = await _audit_count(app)
    document, variables = SAMPLES[field]
    result = await gql(document, variables, user=7)
    assert result.codes == ["FORBIDDEN"]
    assert result.data is None
    assert await _audit_count(app) == before


@pytest.mark.parametrize("field", sorted(SAMPLES))
async def test_staff_may_and_each_mutation_writes_one_audit_row(
    gql: GraphQLClient, app: Any, field: str
) -> None:
    await _prepare(gql)
    before = await _audit_count(app)
    document, variables = SAMPLES[field]
    response = await gql.http.post(
        "/graphql",
        json={"query": document, "variables": variables},
        headers={
            "Authorization": f"Bearer {_staff_token()}",
            "User-Agent": "staff-console/1.0",
            "X-Request-ID": f"req-{field}",
        },
    )
    body = response.json()
    assert "errors" not in body, body
    is_mutation = staff_fields()[field] == "Mutation"
    async with database_of(app).read() as session:
        rows = (await session.scalars(select(AuditLog).order_by(AuditLog.id))).all()
    new = rows[before:]
    assert len(new) == (1 if is_mutation else 0)
    for row in new:
        assert row.actor_id == STAFF_ID
        assert row.request_id == f"req-{field}"
        assert row.user_agent == "staff-console/1.0"
        assert row.ip_address
        assert row.action
        assert row.resource_type


def _staff_token() -> str:
    from tests.support import token

    return token(STAFF_ID, staff=True)
