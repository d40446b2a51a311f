"""API keys through GraphQL, as a user and as staff: shown once, stored as a hash only,
listed, revoked (staff: audited), and refused when the input breaks a rule."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import pytest
from sqlalchemy import select, text

from llm_gateway.db.models import ApiKey, AuditLog
from llm_gateway.services.money.api_keys import records
from tests.factories import database_of
from tests.support import GraphQLClient

USER = 7
OTHER = 8
STAFF = 900

FIELDS = (
    "id userId name prefix lastFour models expiresAt dailyTokenLimit lastUsedAt createdAt revokedAt"
)
CREATE = (
    "mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) "
    f"{{ key apiKey {{ {FIELDS} }} }} }}"
)
REVOKE = f"mutation($id: UUID!) {{ revokeApiKey(input: {{id: $id}}) {{ {FIELDS} }} }}"
LIST = f"{{ apiKeys {{ {FIELDS} }} }}"
ALL = (
    "query($userId: SafeInt, $first: Int, $after: String) { allApiKeys(userId: $userId, "
    "first: $first, after: $after) { edges { node { id userId name } } "
    "pageInfo { hasNextPage endCursor } } }"
)


async def create_key(gql: GraphQLClient, user: int = USER, **fields: Any) -> dict[str, Any]:
    result = await gql(CREATE, {"input": {"name": "laptop", **fields}}, user=user)
    created: dict[str, Any] = result.ok()["createApiKey"]
    return created


async def stored_rows(app: Any) -> list[dict[str, Any]]:
    """Every column of every row of ``api_keys``, as the database holds them."""
    async with database_of(app).read() as session:
        result = await session.execute(text("SELECT * FROM api_keys"))
        return [dict(row._mapping) for row in result]


async def test_create_shows_the_key_once_and_stores_only_its_hash(
    gql: GraphQLClient, app: Any
) -> None:
    created = await create_key(
        gql, models=["gpt-4-turbo", "mock", "gpt-4-turbo"], dailyTokenLimit=5000
    )
    key, shown = created["key"], created["apiKey"]
    assert key.startswith("sk-lg-")
    assert len(key) == len("sk-lg-") + 43  # 32 random bytes, URL-safe base64
    assert shown["prefix"] == key[:10]
    assert shown["lastFour"] == key[-4:]
    assert shown["userId"] == USER
    assert shown["name"] == "laptop"
    assert shown["models"] == ["gpt-4-turbo", "mock"]  # each once, in the order given
    assert shown["dailyTokenLimit"] == 5000
    assert shown["expiresAt"] is None
    assert shown["lastUsedAt"] is None
    assert shown["revokedAt"] is None

    rows = await stored_rows(app)
    assert len(rows) == 1
    assert rows[0]["key_hash"] == hashlib.sha256(key.encode()).hexdigest()
    secret = key.removeprefix("sk-lg-")
    for column, value in rows[0].items():
        assert key not in str(value), column
        assert secret not in str(value), column

    # Never again: the list has the record, not the key.
    listed = (await gql(LIST, user=USER)).ok()["apiKeys"]
    assert listed == [shown]
    assert key not in str(listed)


async def test_a_second_key_is_a_different_key(gql: GraphQLClient) -> None:
    first = await create_key(gql, name="one")
    second = await create_key(gql, name="two")
    assert first["key"] != second["key"]
    listed = (await gql(LIST, user=USER)).ok()["apiKeys"]
    assert [k["name"] for k in listed] == ["two", "one"]  # newest first


async def test_revoke_own_key_at_once_and_again_changes_nothing(
    gql: GraphQLClient, app: Any
) -> None:
    kept = await create_key(gql, name="kept")
    gone = await create_key(gql, name="gone")
    revoked = (await gql(REVOKE, {"id": gone["apiKey"]["id"]}, user=USER)).ok()["revokeApiKey"]
    assert revoked["revokedAt"] is not None
    again = (await gql(REVOKE, {"id": gone["apiKey"]["id"]}, user=USER)).ok()["revokeApiKey"]
    assert again["revokedAt"] == revoked["revokedAt"]

    listed = {k["name"]: k for k in (await gql(LIST, user=USER)).ok()["apiKeys"]}
    assert listed["gone"]["revokedAt"] == revoked["revokedAt"]
    assert listed["kept"]["revokedAt"] is None

    services = app.state.services
    assert (await services.api_keys.authenticate(kept["key"])).name == "kept"
    async with database_of(app).read() as session:
        row = await session.get(ApiKey, uuid.UUID(gone["apiKey"]["id"]))
        audits = (await session.scalars(select(AuditLog))).all()
    assert row is not None
    assert row.revoked_by == USER
    assert audits == []  # an owner's own revocation is not a staff action


async def test_another_users_key_is_not_found_and_stays_valid(gql: GraphQLClient, app: Any) -> None:
    theirs = await create_key(gql, user=OTHER)
    result = await gql(REVOKE, {"id": theirs["apiKey"]["id"]}, user=USER)
    assert result.codes == ["NOT_FOUND"]
    missing = await gql(REVOKE, {"id": str(uuid.uuid4())}, user=USER)
    assert missing.codes == ["NOT_FOUND"]
    assert result.errors[0]["message"] == missing.errors[0]["message"]  # nothing to tell apart
    assert (await gql(LIST, user=USER)).ok()["apiKeys"] == []
    principal = await app.state.services.api_keys.authenticate(theirs["key"])
    assert principal.user_id == OTHER


async def test_staff_list_everyones_keys_page_by_page(gql: GraphQLClient) -> None:
    for user, name in ((USER, "a"), (OTHER, "b"), (USER, "c")):
        await create_key(gql, user=user, name=name)

    first = (await gql(ALL, {"first": 2}, user=STAFF, staff=True)).ok()["allApiKeys"]
    assert [e["node"]["name"] for e in first["edges"]] == ["c", "b"]
    assert first["pageInfo"]["hasNextPage"] is True
    rest = await gql(ALL, {"first": 2, "after": first["pageInfo"]["endCursor"]}, staff=True)
    assert [e["node"]["name"] for e in rest.ok()["allApiKeys"]["edges"]] == ["a"]

    one_user = (await gql(ALL, {"userId": OTHER}, staff=True)).ok()["allApiKeys"]
    assert [(e["node"]["userId"], e["node"]["name"]) for e in one_user["edges"]] == [(OTHER, "b")]

    assert (await gql(ALL, {"after": "bogus"}, staff=True)).codes == ["VALIDATION_FAILED"]
    assert (await gql(ALL, {}, user=USER)).codes == ["FORBIDDEN"]


async def test_staff_revoke_anyones_key_audited_once(gql: GraphQLClient, app: Any) -> None:
    theirs = await create_key(gql, user=USER)
    key_id = theirs["apiKey"]["id"]
    revoked = await gql(REVOKE, {"id": key_id}, user=STAFF, staff=True)
    assert revoked.ok()["revokeApiKey"]["revokedAt"] is not None
    await gql(REVOKE, {"id": key_id}, user=STAFF, staff=True)  # again: nothing new

    async with database_of(app).read() as session:
        audits = (await session.scalars(select(AuditLog))).all()
        row = await session.get(ApiKey, uuid.UUID(key_id))
    assert [(a.action, a.actor_id, a.resource_type, a.resource_id) for a in audits] == [
        ("api_key.revoke", STAFF, "api_key", key_id)
    ]
    assert audits[0].after is not None
    assert audits[0].after["userId"] == USER
    assert theirs["key"] not in str(audits[0].after)
    assert row is not None
    assert row.revoked_by == STAFF


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"name": "   "}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"name": "two\nlines"}, "name"),
        ({"models": ["gpt-4-turbo", "no-such-model"]}, "models"),
        ({"models": []}, "models"),
        ({"expiresAt": "2020-01-01T00:00:00Z"}, "expiresAt"),
        ({"expiresAt": "2999-01-01T00:00:00"}, "expiresAt"),  # no time zone
        ({"dailyTokenLimit": -1}, "dailyTokenLimit"),
    ],
)
async def test_input_that_breaks_a_rule_is_refused(
    gql: GraphQLClient, app: Any, fields: dict[str, Any], field: str
) -> None:
    result = await gql(CREATE, {"input": {"name": "ok", **fields}}, user=USER)
    assert result.codes == ["VALIDATION_FAILED"]
    assert result.errors[0]["extensions"]["field"] == field
    assert await stored_rows(app) == []


async def test_a_key_may_expire_and_be_limited_to_zero(gql: GraphQLClient) -> None:
    created = await create_key(gql, expiresAt="2999-01-01T00:00:00+02:00", dailyTokenLimit=0)
    assert created["apiKey"]["expiresAt"] == "2998-12-31T22:00:00+00:00"
    assert created["apiKey"]["dailyTokenLimit"] == 0


async def test_live_keys_per_user_are_capped(
    gql: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(records, "MAX_LIVE_KEYS", 2)
    first = await create_key(gql)
    await create_key(gql)
    refused = await gql(CREATE, {"input": {"name": "third"}}, user=USER)
    assert refused.codes == ["CONFLICT"]
    assert (await create_key(gql, user=OTHER))["apiKey"]["userId"] == OTHER  # per user

    await gql(REVOKE, {"id": first["apiKey"]["id"]}, user=USER)
    assert (await create_key(gql, name="third"))["apiKey"]["name"] == "third"
