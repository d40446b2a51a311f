"""Runtime settings: secrets encrypted at rest, masked everywhere, applied without a restart."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select, text

from llm_gateway.db.models import AuditLog
from llm_gateway.services.staff.runtime_settings import mask
from llm_gateway.settings import Settings
from tests.chat_support import finished, new_dialog, send
from tests.conftest import make_settings
from tests.factories import database_of
from tests.fakes import DEFAULT_OPENAI_KEY, OpenAIFake, Scenario, fake_openai
from tests.support import GraphQLClient

SET = """mutation($input: SetConfigInput!) {
  setConfig(input: $input) { key value isSecret description updatedBy }
}"""
SECRET = "sk-live-0123456789abcdefSECRETVALUE9f2c"


@pytest.fixture
async def openai() -> AsyncIterator[OpenAIFake]:
    async with fake_openai() as fake:
        yield fake


@pytest.fixture
def settings(database_url: str, openai: OpenAIFake) -> Settings:
    # The environment's key is wrong; staff fix it at runtime.
    return make_settings(
        database_url, openai_api_key="sk-wrong-key-from-env", openai_base_url=openai.base_url
    )


async def staff(gql: GraphQLClient, query: str, variables: dict[str, Any] | None = None) -> Any:
    return await gql(query, variables, user=900, staff=True)


async def test_a_secret_is_encrypted_at_rest_and_masked_on_every_read(
    gql: GraphQLClient, app: Any
) -> None:
    entry = (await staff(gql, SET, {"input": {"key": "openai_api_key", "value": SECRET}})).ok()[
        "setConfig"
    ]
    assert entry == {
        "key": "OPENAI_API_KEY",
        "value": "sk-…9f2c",
        "isSecret": True,
        "description": "OpenAI (or compatible) API key",
        "updatedBy": 900,
    }
    listed = (await staff(gql, "{ systemConfig { key value isSecret } }")).ok()["systemConfig"]
    assert listed == [{"key": "OPENAI_API_KEY", "value": "sk-…9f2c", "isSecret": True}]

    async with database_of(app).read() as session:
        raw = (await session.execute(text("SELECT key, value FROM system_config"))).all()
        audit_rows = (await session.scalars(select(AuditLog))).all()
    assert len(raw) == 1
    assert SECRET not in raw[0][1]
    assert "0123456789" not in raw[0][1]
    assert [row.action for row in audit_rows] == ["config.set"]
    assert SECRET not in str(audit_rows[0].after)
    assert audit_rows[0].after == {"value": "sk-…9f2c", "secret": True}

    rotated = (
        await staff(
            gql, SET, {"input": {"key": "OPENAI_API_KEY", "value": "sk-new-rotated-key-7777"}}
        )
    ).ok()
    assert rotated["setConfig"]["value"] == "sk-…7777"
    async with database_of(app).read() as session:
        last = (await session.scalars(select(AuditLog).order_by(AuditLog.id.desc()))).first()
    assert last is not None
    assert last.before == {"value": "sk-…9f2c", "secret": True}


async def test_plain_settings_are_readable_and_provider_keys_cannot_be_made_plain(
    gql: GraphQLClient,
) -> None:
    plain = await staff(
        gql, SET, {"input": {"key": "OPENAI_BASE_URL", "value": "http://vllm.local:8000/v1"}}
    )
    assert plain.ok()["setConfig"]["value"] == "http://vllm.local:8000/v1"
    refused = await staff(
        gql, SET, {"input": {"key": "ANTHROPIC_API_KEY", "value": "x" * 20, "secret": False}}
    )
    assert refused.codes == ["VALIDATION_FAILED"]
    bad_key = await staff(gql, SET, {"input": {"key": "no spaces please", "value": "1"}})
    assert bad_key.codes == ["VALIDATION_FAILED"]


async def test_a_changed_provider_key_is_used_by_the_next_request(
    gql: GraphQLClient, app: Any, openai: OpenAIFake
) -> None:
    dialog_id = await new_dialog(gql, model="gpt-4-turbo")
    refused = (await send(gql, dialog_id, "first")).ok()["sendMessage"]
    assert (await finished(app, refused["assistantMessage"]["id"])).error_code == "PROVIDER_AUTH"

    (await staff(gql, SET, {"input": {"key": "OPENAI_API_KEY", "value": DEFAULT_OPENAI_KEY}})).ok()
    openai.script(Scenario(text="Now it works."))
    sent = (await send(gql, dialog_id, "second")).ok()["sendMessage"]
    answer = await finished(app, sent["assistantMessage"]["id"])
    assert (answer.status, answer.content) == ("complete", "Now it works.")
    assert openai.chat_requests[-1].headers["authorization"] == f"Bearer {DEFAULT_OPENAI_KEY}"

    deleted = await staff(
        gql, 'mutation { deleteConfig(input: {key: "OPENAI_API_KEY"}) { key value } }'
    )
    assert deleted.ok()["deleteConfig"] == {
        "key": "OPENAI_API_KEY",
        "value": mask(DEFAULT_OPENAI_KEY),
    }
    assert DEFAULT_OPENAI_KEY not in str(deleted.body)
    again = (await send(gql, dialog_id, "third")).ok()["sendMessage"]
    assert (await finished(app, again["assistantMessage"]["id"])).error_code == "PROVIDER_AUTH"


@pytest.mark.parametrize(
    "query",
    [
        "{ systemConfig { key } }",
        'mutation { setConfig(input: {key: "A", value: "b"}) { key } }',
        'mutation { deleteConfig(input: {key: "A"}) { key } }',
    ],
)
async def test_settings_are_staff_only(gql: GraphQLClient, query: str) -> None:
    assert (await gql(query, user=1)).codes == ["FORBIDDEN"]


async def test_limits_set_at_runtime_win_over_the_environment(
    gql: GraphQLClient, app: Any, openai: OpenAIFake
) -> None:
    for key, value in [
        ("INITIAL_TOKEN_BALANCE", "500"),
        ("MAX_CONTENT_LENGTH", "10"),
        ("RATE_LIMIT_REQUESTS", "2"),  # attempts count, refused ones too
    ]:
        (await staff(gql, SET, {"input": {"key": key, "value": value}})).ok()
    me = (await gql("{ me { balance { balance } } }", user=31)).ok()["me"]
    assert me["balance"]["balance"] == 500

    dialog_id = await new_dialog(gql, user=31)
    too_long = await send(gql, dialog_id, "x" * 11, user=31)
    assert too_long.codes == ["VALIDATION_FAILED"]
    first = (await send(gql, dialog_id, "short", user=31)).ok()["sendMessage"]
    await finished(app, first["assistantMessage"]["id"])
    assert (await send(gql, dialog_id, "again", user=31)).codes == ["RATE_LIMITED"]

    removed = await staff(
        gql, 'mutation { deleteConfig(input: {key: "RATE_LIMIT_REQUESTS"}) { key } }'
    )
    assert removed.ok()["deleteConfig"]["key"] == "RATE_LIMIT_REQUESTS"
    assert (await send(gql, dialog_id, "again", user=31)).errors == []


@pytest.mark.parametrize("value", ["-1", "lots", "1.5", ""])
async def test_a_limit_must_be_a_whole_number(gql: GraphQLClient, value: str) -> None:
    result = await staff(gql, SET, {"input": {"key": "MAX_CONTENT_LENGTH", "value": value}})
    assert result.codes == ["VALIDATION_FAILED"]
