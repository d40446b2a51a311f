"""Staff curate models and agents: validation, the one default, deletion with a
replacement, one audit row per change, every change broadcast, and the old REST reload."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import select

from llm_gateway.db.models import AuditLog
from llm_gateway.services.plumbing.broker_events import CONFIG_CHANNEL
from tests.chat_support import finished, new_dialog, send
from tests.factories import database_of
from tests.support import GraphQLClient, Result, token

STAFF_ID = 900
MODEL_FIELDS = """name displayName provider upstreamModel contextWindow maxOutputTokens
  promptPricePer1k completionPricePer1k promptWeight completionWeight enabled isDefault
  fallbackModel { name }"""
CREATE_MODEL = f"""mutation($input: CreateModelInput!) {{
  createModel(input: $input) {{ {MODEL_FIELDS} }}
}}"""
UPDATE_MODEL = f"""mutation($input: UpdateModelInput!) {{
  updateModel(input: $input) {{ {MODEL_FIELDS} }}
}}"""
DELETE_MODEL = """mutation($input: DeleteModelInput!) {
  deleteModel(input: $input) { name movedDialogs movedAgents replacement { name isDefault } }
}"""
RELOAD = "mutation { reloadModels { status message models } }"
AGENT_FIELDS = "id name description systemPrompt temperature topP maxTokens enabled model { name }"
CREATE_AGENT = f"""mutation($input: CreateAgentInput!) {{
  createAgent(input: $input) {{ {AGENT_FIELDS} }}
}}"""
UPDATE_AGENT = f"""mutation($input: UpdateAgentInput!) {{
  updateAgent(input: $input) {{ {AGENT_FIELDS} }}
}}"""
DELETE_AGENT = """mutation($input: DeleteAgentInput!) { deleteAgent(input: $input) { id name } }"""
RELOAD_PATH = "/api/v1/admin/models/reload"

# The models migration 0008 added under their own ids (the current catalog).
CURRENT_MODELS = [
    "claude-haiku-4-5",
    "claude-opus-4-8",
    "claude-sonnet-4-6",
    "gpt-5.4",
    "gpt-5.4-mini",
    "gpt-5.5",
]


def mock_model(name: str = "mock-plus", **fields: Any) -> dict[str, Any]:
    """A model on the built-in mock provider: it answers without any key."""
    return {
        "name": name,
        "provider": "MOCK",
        "upstreamModel": "mock-echo",
        "contextWindow": 32_000,
        "maxOutputTokens": 1_000,
        **fields,
    }


async def staff(gql: GraphQLClient, query: str, variables: dict[str, Any] | None = None) -> Result:
    return await gql(query, variables, user=STAFF_ID, staff=True)


async def audit_rows(app: Any) -> list[AuditLog]:
    async with database_of(app).read() as session:
        return list((await session.scalars(select(AuditLog).order_by(AuditLog.id))).all())


async def model_names(gql: GraphQLClient, *, staff: bool = False) -> list[str]:
    """What ``models`` lists, to a user or (with disabled ones) to staff."""
    result = await gql("{ models { name } }", user=STAFF_ID if staff else 7, staff=staff)
    return [m["name"] for m in result.ok()["models"]]


def refused(result: Result) -> tuple[str | None, str | None]:
    """The one error's code and the input field it names."""
    assert len(result.errors) == 1, result.errors
    return result.codes[0], result.errors[0]["extensions"].get("field")


# --- models ---------------------------------------------------------------------------


async def test_staff_add_a_model_users_then_chat_with(gql: GraphQLClient, app: Any) -> None:
    created = await staff(
        gql,
        CREATE_MODEL,
        {
            "input": mock_model(
                displayName="Mock Plus",
                promptPricePer1k="0.002",
                completionPricePer1k=0.006,  # a JSON number works too
                promptWeight="1.5",
                fallbackModel="mock",
            )
        },
    )
    model = created.ok()["createModel"]
    assert model == {
        "name": "mock-plus",
        "displayName": "Mock Plus",
        "provider": "MOCK",
        "upstreamModel": "mock-echo",
        "contextWindow": 32_000,
        "maxOutputTokens": 1_000,
        "promptPricePer1k": model["promptPricePer1k"],
        "completionPricePer1k": model["completionPricePer1k"],
        "promptWeight": model["promptWeight"],
        "completionWeight": model["completionWeight"],
        "enabled": True,
        "isDefault": False,
        "fallbackModel": {"name": "mock"},
    }
    # As stored: NUMERIC(12, 6) prices and NUMERIC(10, 4) weights, exact.
    assert float(model["promptPricePer1k"]) == 0.002
    assert model["completionPricePer1k"].rstrip("0") == "0.006"
    assert model["promptWeight"].rstrip("0") == "1.5"
    assert float(model["completionWeight"]) == 1

    assert "mock-plus" in await model_names(gql)
    dialog_id = await new_dialog(gql, model="mock-plus")
    sent = (await send(gql, dialog_id, "hi")).ok()["sendMessage"]
    answer = await finished(app, sent["assistantMessage"]["id"])
    assert (answer.status, answer.model_name) == ("complete", "mock-plus")

    [row] = await audit_rows(app)
    assert (row.action, row.resource_type, row.resource_id) == (
        "model.create",
        "model",
        "mock-plus",
    )
    assert row.before is None
    assert row.after is not None
    assert row.after["fallback_model"] == "mock"
    assert row.after["prompt_price_per_1k"] == "0.002000"
    assert row.after["prompt_weight"] == "1.5000"


@pytest.mark.parametrize(
    ("fields", "code", "field"),
    [
        ({"name": "  "}, "VALIDATION_FAILED", "name"),
        ({"name": "gpt-4-turbo"}, "CONFLICT", None),
        ({"contextWindow": 0}, "VALIDATION_FAILED", "contextWindow"),
        ({"maxOutputTokens": 40_000}, "VALIDATION_FAILED", "maxOutputTokens"),
        ({"maxOutputTokens": 0}, "VALIDATION_FAILED", "maxOutputTokens"),
        ({"promptPricePer1k": "-0.01"}, "VALIDATION_FAILED", "promptPricePer1k"),
        ({"completionPricePer1k": "0.0000001"}, "VALIDATION_FAILED", "completionPricePer1k"),
        ({"completionPricePer1k": "NaN"}, "VALIDATION_FAILED", "completionPricePer1k"),
        ({"promptPricePer1k": "1000000"}, "VALIDATION_FAILED", "promptPricePer1k"),
        ({"promptWeight": "-1"}, "VALIDATION_FAILED", "promptWeight"),
        ({"completionWeight": "0.00001"}, "VALIDATION_FAILED", "completionWeight"),
        ({"fallbackModel": "mock-plus"}, "VALIDATION_FAILED", "fallbackModel"),
        ({"fallbackModel": "no-such-model"}, "VALIDATION_FAILED", "fallbackModel"),
        ({"isDefault": True, "enabled": False}, "VALIDATION_FAILED", "isDefault"),
    ],
)
async def test_an_invalid_model_is_refused_and_nothing_is_recorded(
    gql: GraphQLClient, app: Any, fields: dict[str, Any], code: str, field: str | None
) -> None:
    result = await staff(gql, CREATE_MODEL, {"input": mock_model(**fields)})
    assert result.data is None
    assert refused(result) == (code, field)
    assert "mock-plus" not in await model_names(gql, staff=True)
    assert await audit_rows(app) == []


async def test_an_unknown_provider_is_refused_by_the_schema(gql: GraphQLClient) -> None:
    result = await staff(gql, CREATE_MODEL, {"input": mock_model(provider="COHERE")})
    assert result.codes == ["GRAPHQL_VALIDATION_FAILED"]


async def test_update_changes_only_what_is_given_and_audits_the_difference(
    gql: GraphQLClient, app: Any
) -> None:
    before = (await staff(gql, '{ model(name: "gpt-4-turbo") { ' + MODEL_FIELDS + " } }")).ok()
    updated = await staff(
        gql,
        UPDATE_MODEL,
        {
            "input": {
                "name": "gpt-4-turbo",
                "displayName": None,
                "promptPricePer1k": "0.02",
                "maxOutputTokens": 8_192,
                "upstreamModel": "gpt-4-turbo-2024-04-09",
                "fallbackModel": "gpt-3.5-turbo",
            }
        },
    )
    model = updated.ok()["updateModel"]
    assert model == {
        **before["model"],
        "displayName": None,
        "promptPricePer1k": model["promptPricePer1k"],
        "maxOutputTokens": 8_192,
        "upstreamModel": "gpt-4-turbo-2024-04-09",
        "fallbackModel": {"name": "gpt-3.5-turbo"},
    }
    assert float(model["promptPricePer1k"]) == 0.02

    [row] = await audit_rows(app)
    assert row.action == "model.update"
    assert row.resource_id == "gpt-4-turbo"
    assert row.before == {
        "display_name": "GPT-4 Turbo (now GPT-5.4)",
        "prompt_price_per_1k": "0.002500",
        "max_output_tokens": 4_096,
        "upstream_model": "gpt-5.4",
        "fallback_model": None,
    }
    assert row.after == {
        "display_name": None,
        "prompt_price_per_1k": "0.020000",
        "max_output_tokens": 8_192,
        "upstream_model": "gpt-4-turbo-2024-04-09",
        "fallback_model": "gpt-3.5-turbo",
    }

    cleared = await staff(
        gql, UPDATE_MODEL, {"input": {"name": "gpt-4-turbo", "fallbackModel": None}}
    )
    assert cleared.ok()["updateModel"]["fallbackModel"] is None


async def test_update_checks_the_model_as_a_whole(gql: GraphQLClient, app: Any) -> None:
    async def update(**fields: Any) -> tuple[str | None, str | None]:
        return refused(await staff(gql, UPDATE_MODEL, {"input": {"name": "gpt-4-turbo", **fields}}))

    assert await update(contextWindow=2_000) == ("VALIDATION_FAILED", "maxOutputTokens")
    assert await update(fallbackModel="gpt-4-turbo") == ("VALIDATION_FAILED", "fallbackModel")
    assert await update(completionWeight="NaN") == ("VALIDATION_FAILED", "completionWeight")
    (
        await staff(
            gql, UPDATE_MODEL, {"input": {"name": "gpt-3.5-turbo", "fallbackModel": "gpt-4-turbo"}}
        )
    ).ok()
    # gpt-3.5-turbo falls back to gpt-4-turbo: the reverse would loop.
    assert await update(fallbackModel="gpt-3.5-turbo") == ("VALIDATION_FAILED", "fallbackModel")
    missing = await staff(gql, UPDATE_MODEL, {"input": {"name": "nope", "enabled": False}})
    assert missing.codes == ["NOT_FOUND"]
    null_for_required = await staff(
        gql, UPDATE_MODEL, {"input": {"name": "gpt-4-turbo", "contextWindow": None}}
    )
    assert null_for_required.codes == ["VALIDATION_FAILED"]  # may be left out, not nulled
    moved = await staff(gql, UPDATE_MODEL, {"input": {"name": "gpt-4-turbo", "provider": "MOCK"}})
    assert moved.ok()["updateModel"]["provider"] == "MOCK"
    rows = await audit_rows(app)
    assert [row.action for row in rows] == ["model.update", "model.update"]
    assert (rows[-1].before, rows[-1].after) == ({"provider": "openai"}, {"provider": "mock"})


async def test_there_is_always_exactly_one_default(gql: GraphQLClient, app: Any) -> None:
    async def defaults() -> list[str]:
        models = (await staff(gql, "{ models { name isDefault } }")).ok()["models"]
        return [m["name"] for m in models if m["isDefault"]]

    assert await defaults() == ["mock"]
    switched = await staff(gql, UPDATE_MODEL, {"input": {"name": "gpt-4-turbo", "isDefault": True}})
    assert switched.ok()["updateModel"]["isDefault"] is True
    assert await defaults() == ["gpt-4-turbo"]
    # A dialog created without a model gets the new default.
    dialog_id = await new_dialog(gql)
    shown = await gql(
        "query($id: UUID!) { dialog(id: $id) { model { name } } }", {"id": dialog_id}, user=7
    )
    assert shown.ok()["dialog"]["model"]["name"] == "gpt-4-turbo"

    no_default = await staff(
        gql, UPDATE_MODEL, {"input": {"name": "gpt-4-turbo", "isDefault": False}}
    )
    assert refused(no_default) == ("VALIDATION_FAILED", "isDefault")
    disabled = await staff(gql, UPDATE_MODEL, {"input": {"name": "gpt-4-turbo", "enabled": False}})
    assert refused(disabled) == ("VALIDATION_FAILED", "enabled")
    disabled_one = await staff(
        gql, UPDATE_MODEL, {"input": {"name": "GigaChat", "isDefault": True}}
    )
    assert refused(disabled_one) == ("VALIDATION_FAILED", "isDefault")
    assert await defaults() == ["gpt-4-turbo"]

    created = await staff(gql, CREATE_MODEL, {"input": mock_model(isDefault=True)})
    assert created.ok()["createModel"]["isDefault"] is True
    assert await defaults() == ["mock-plus"]
    # The old default is an ordinary model again, so it may be disabled now.
    (await staff(gql, UPDATE_MODEL, {"input": {"name": "gpt-4-turbo", "enabled": False}})).ok()
    assert [row.action for row in await audit_rows(app)] == [
        "model.update",
        "model.create",
        "model.update",
    ]


async def test_a_disabled_model_refuses_new_messages(gql: GraphQLClient, app: Any) -> None:
    (await staff(gql, CREATE_MODEL, {"input": mock_model()})).ok()
    dialog_id = await new_dialog(gql, model="mock-plus")

    (await staff(gql, UPDATE_MODEL, {"input": {"name": "mock-plus", "enabled": False}})).ok()
    assert "mock-plus" not in await model_names(gql)
    assert "mock-plus" in await model_names(gql, staff=True)
    refusal = await send(gql, dialog_id, "still there?")
    assert refused(refusal) == ("VALIDATION_FAILED", "model")
    assert "disabled" in refusal.errors[0]["message"]
    new_dialogs = await gql('mutation { createDialog(input: {model: "mock-plus"}) { id } }', user=7)
    assert refused(new_dialogs) == ("VALIDATION_FAILED", "model")

    (await staff(gql, UPDATE_MODEL, {"input": {"name": "mock-plus", "enabled": True}})).ok()
    sent = (await send(gql, dialog_id, "and now?")).ok()["sendMessage"]
    assert (await finished(app, sent["assistantMessage"]["id"])).status == "complete"


async def test_a_model_in_use_is_deleted_only_with_a_replacement(
    gql: GraphQLClient, app: Any
) -> None:
    (await staff(gql, CREATE_MODEL, {"input": mock_model("big", maxOutputTokens=8_000)})).ok()
    agent = (
        await staff(
            gql, CREATE_AGENT, {"input": {"name": "big-agent", "model": "big", "maxTokens": 8_000}}
        )
    ).ok()["createAgent"]
    moved = [await new_dialog(gql, model="big", maxTokens=8_000) for _ in range(2)]
    kept = await new_dialog(gql, model="gpt-4-turbo")
    (
        await staff(gql, UPDATE_MODEL, {"input": {"name": "gpt-4-turbo", "fallbackModel": "big"}})
    ).ok()
    before = len(await audit_rows(app))

    in_use = await staff(gql, DELETE_MODEL, {"input": {"name": "big"}})
    assert in_use.codes == ["CONFLICT"]
    assert in_use.errors[0]["extensions"]["dialogs"] == 2
    assert "2 dialogs" in in_use.errors[0]["message"]
    itself = await staff(gql, DELETE_MODEL, {"input": {"name": "big", "replacement": "big"}})
    assert refused(itself) == ("VALIDATION_FAILED", "replacement")
    disabled = await staff(gql, DELETE_MODEL, {"input": {"name": "big", "replacement": "GigaChat"}})
    assert refused(disabled) == ("VALIDATION_FAILED", "replacement")
    assert len(await audit_rows(app)) == before

    deleted = await staff(gql, DELETE_MODEL, {"input": {"name": "big", "replacement": "mock"}})
    assert deleted.ok()["deleteModel"] == {
        "name": "big",
        "movedDialogs": 2,
        "movedAgents": 1,
        "replacement": {"name": "mock", "isDefault": True},
    }
    assert "big" not in await model_names(gql, staff=True)
    for dialog_id in moved:
        shown = await gql(
            "query($id: UUID!) { dialog(id: $id) { model { name } maxTokens } }",
            {"id": dialog_id},
            user=7,
        )
        # 8,000 output tokens do not fit the replacement: the dialog takes its default.
        assert shown.ok()["dialog"] == {"model": {"name": "mock"}, "maxTokens": None}
    kept_model = await gql(
        "query($id: UUID!) { dialog(id: $id) { model { name fallbackModel { name } } } }",
        {"id": kept},
        user=7,
    )
    assert kept_model.ok()["dialog"]["model"] == {"name": "gpt-4-turbo", "fallbackModel": None}
    agents = (await staff(gql, "{ agents { id model { name } maxTokens } }")).ok()["agents"]
    assert {"id": agent["id"], "model": {"name": "mock"}, "maxTokens": None} in agents

    sent = (await send(gql, moved[0], "who answers now?")).ok()["sendMessage"]
    answer = await finished(app, sent["assistantMessage"]["id"])
    assert (answer.status, answer.model_name) == ("complete", "mock")

    row = (await audit_rows(app))[-1]
    assert (row.action, row.resource_id) == ("model.delete", "big")
    assert row.before is not None
    assert row.before["max_output_tokens"] == 8_000
    assert row.after == {"replacement": "mock", "moved_dialogs": 2, "moved_agents": 1}


async def test_deleting_the_default_needs_a_replacement_that_becomes_default(
    gql: GraphQLClient,
) -> None:
    alone = await staff(gql, DELETE_MODEL, {"input": {"name": "mock"}})
    assert refused(alone) == ("VALIDATION_FAILED", "replacement")
    replaced = await staff(
        gql, DELETE_MODEL, {"input": {"name": "mock", "replacement": "gpt-3.5-turbo"}}
    )
    assert replaced.ok()["deleteModel"]["replacement"] == {
        "name": "gpt-3.5-turbo",
        "isDefault": True,
    }
    unused = await staff(gql, DELETE_MODEL, {"input": {"name": "GigaChat-Max"}})
    assert unused.ok()["deleteModel"] == {
        "name": "GigaChat-Max",
        "movedDialogs": 0,
        "movedAgents": 0,
        "replacement": None,
    }
    assert (await staff(gql, DELETE_MODEL, {"input": {"name": "GigaChat-Max"}})).codes == [
        "NOT_FOUND"
    ]


# --- agents ---------------------------------------------------------------------------


async def test_agents_are_created_updated_and_checked_against_their_model(
    gql: GraphQLClient, app: Any
) -> None:
    created = await staff(
        gql,
        CREATE_AGENT,
        {
            "input": {
                "name": "proofreader",
                "description": "Proofreads.",
                "systemPrompt": "Fix typos.",
                "model": "claude-3-sonnet",
                "temperature": 0.3,
                "maxTokens": 2_000,
            }
        },
    )
    agent = created.ok()["createAgent"]
    assert agent == {
        "id": agent["id"],
        "name": "proofreader",
        "description": "Proofreads.",
        "systemPrompt": "Fix typos.",
        "temperature": 0.3,
        "topP": None,
        "maxTokens": 2_000,
        "enabled": True,
        "model": {"name": "claude-3-sonnet"},
    }
    assert "proofreader" in [a["name"] for a in (await gql("{ agents { name } }")).ok()["agents"]]

    async def create(**fields: Any) -> tuple[str | None, str | None]:
        return refused(await staff(gql, CREATE_AGENT, {"input": {"name": "x", **fields}}))

    # Anthropic takes temperatures up to 1; the default model (mock) up to 2.
    assert await create(model="claude-3-sonnet", temperature=1.5) == (
        "VALIDATION_FAILED",
        "temperature",
    )
    assert await create(temperature=2.5) == ("VALIDATION_FAILED", "temperature")
    assert await create(model="claude-3-sonnet", maxTokens=5_000) == (
        "VALIDATION_FAILED",
        "maxTokens",
    )
    assert await create(topP=0) == ("VALIDATION_FAILED", "topP")
    assert await create(model="GigaChat") == ("VALIDATION_FAILED", "model")
    assert await create(systemPrompt="x" * 100_001) == ("VALIDATION_FAILED", "systemPrompt")
    assert await create(name="") == ("VALIDATION_FAILED", "name")
    assert await create(name="proofreader") == ("CONFLICT", None)

    async def update(**fields: Any) -> Result:
        return await staff(gql, UPDATE_AGENT, {"input": {"id": agent["id"], **fields}})

    warmer = (await update(model="gpt-4-turbo", temperature=1.5, description="Warmer.")).ok()
    assert warmer["updateAgent"] | {"id": 0} == agent | {
        "id": 0,
        "model": {"name": "gpt-4-turbo"},
        "temperature": 1.5,
        "description": "Warmer.",
    }
    # Back to Anthropic with temperature 1.5 kept: refused as a whole.
    assert refused(await update(model="claude-3-opus")) == ("VALIDATION_FAILED", "temperature")
    # Without a model the agent uses the default (mock: 1,024 output tokens at most).
    too_long = await update(model=None)
    assert refused(too_long) == ("VALIDATION_FAILED", "maxTokens")
    cleared = (await update(model=None, maxTokens=None, enabled=False)).ok()["updateAgent"]
    assert (cleared["model"], cleared["maxTokens"], cleared["enabled"]) == (None, None, False)
    assert "proofreader" not in [
        a["name"] for a in (await gql("{ agents { name } }")).ok()["agents"]
    ]
    assert (await staff(gql, UPDATE_AGENT, {"input": {"id": 999_999, "name": "y"}})).codes == [
        "NOT_FOUND"
    ]

    rows = await audit_rows(app)
    assert [row.action for row in rows] == ["agent.create", "agent.update", "agent.update"]
    assert rows[1].before == {
        "model": "claude-3-sonnet",
        "temperature": 0.3,
        "description": "Proofreads.",
    }
    assert rows[1].after == {"model": "gpt-4-turbo", "temperature": 1.5, "description": "Warmer."}


async def test_dialogs_outlive_their_deleted_agent(gql: GraphQLClient, app: Any) -> None:
    agent = (
        await staff(gql, CREATE_AGENT, {"input": {"name": "pirate", "systemPrompt": "Arr."}})
    ).ok()["createAgent"]
    dialog_id = await new_dialog(gql, agentId=agent["id"])

    deleted = await staff(gql, DELETE_AGENT, {"input": {"id": agent["id"]}})
    assert deleted.ok()["deleteAgent"] == {"id": agent["id"], "name": "pirate"}
    assert (await staff(gql, DELETE_AGENT, {"input": {"id": agent["id"]}})).codes == ["NOT_FOUND"]

    shown = await gql(
        "query($id: UUID!) { dialog(id: $id) { agent { name } model { name } } }",
        {"id": dialog_id},
        user=7,
    )
    assert shown.ok()["dialog"] == {"agent": None, "model": {"name": "mock"}}
    sent = (await send(gql, dialog_id, "ahoy")).ok()["sendMessage"]
    assert (await finished(app, sent["assistantMessage"]["id"])).status == "complete"
    row = (await audit_rows(app))[-1]
    assert (row.action, row.resource_type, row.resource_id) == (
        "agent.delete",
        "agent",
        str(agent["id"]),
    )
    assert row.before is not None
    assert row.before["system_prompt"] == "Arr."


# --- every change: one audit row, a broadcast, staff only -------------------------------

MUTATIONS: list[tuple[str, str, dict[str, Any] | None]] = [
    ("model.create", CREATE_MODEL, {"input": mock_model()}),
    ("model.update", UPDATE_MODEL, {"input": {"name": "mock-plus", "promptWeight": "2"}}),
    ("model.reload", RELOAD, None),
    ("agent.create", CREATE_AGENT, {"input": {"name": "helper", "model": "mock-plus"}}),
    ("agent.update", UPDATE_AGENT, {"input": {"id": 0, "enabled": False}}),
    ("agent.delete", DELETE_AGENT, {"input": {"id": 0}}),
    ("model.delete", DELETE_MODEL, {"input": {"name": "mock-plus"}}),
]


async def test_every_change_is_audited_once_and_broadcast(gql: GraphQLClient, app: Any) -> None:
    broker = app.state.services.broker
    agent_id = 0
    async with broker.subscribe(CONFIG_CHANNEL) as notices:
        for number, (action, query, variables) in enumerate(MUTATIONS, start=1):
            if variables and variables["input"].get("id") == 0:
                variables = {"input": {**variables["input"], "id": agent_id}}
            response = await gql.http.post(
                "/graphql",
                json={"query": query, "variables": variables or {}},
                headers={
                    "Authorization": f"Bearer {token(STAFF_ID, staff=True)}",
                    "X-Request-ID": f"req-{number}",
                    "User-Agent": "ops-console/2.0",
                },
            )
            data = Result(response.status_code, response.json()).ok()
            if action == "agent.create":
                agent_id = data["createAgent"]["id"]

            rows = await audit_rows(app)
            assert len(rows) == number, [r.action for r in rows]
            row = rows[-1]
            assert (row.action, row.actor_id, row.request_id) == (action, STAFF_ID, f"req-{number}")
            assert row.user_agent == "ops-console/2.0"
            assert row.ip_address == "127.0.0.1"
            async with asyncio.timeout(5):
                notice = await anext(notices)
            assert notice == {"key": "models"}


@pytest.mark.parametrize(("action", "query", "variables"), MUTATIONS)
async def test_changes_are_for_staff_only(
    gql: GraphQLClient,
    app: Any,
    action: str,
    query: str,
    variables: dict[str, Any] | None,
) -> None:
    result = await gql(query, variables, user=7)
    assert result.codes == ["FORBIDDEN"]
    assert result.data is None
    assert await audit_rows(app) == []


async def test_reload_models_answers_like_the_old_service(gql: GraphQLClient, app: Any) -> None:
    (await staff(gql, UPDATE_MODEL, {"input": {"name": "claude-3-opus", "enabled": False}})).ok()
    reloaded = (await staff(gql, RELOAD)).ok()["reloadModels"]
    enabled = ["mock", "claude-3-sonnet", *CURRENT_MODELS, "gpt-3.5-turbo", "gpt-4-turbo"]
    enabled = ["mock", *sorted(enabled[1:])]
    assert reloaded == {"status": "ok", "message": "Reloaded 10 models", "models": enabled}
    row = (await audit_rows(app))[-1]
    assert (row.action, row.after) == ("model.reload", {"models": enabled})


# --- the previous service's REST endpoint ---------------------------------------------


async def test_rest_reload_for_staff(gql: GraphQLClient, app: Any) -> None:
    response = await gql.http.post(
        RELOAD_PATH,
        headers={
            "Authorization": f"Bearer {token(STAFF_ID, staff=True)}",
            "X-Request-ID": "ops-script-1",
            "User-Agent": "curl/8.5.0",
        },
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body == {
        "status": "ok",
        "message": "Reloaded 11 models",
        "models": [
            "mock",
            *sorted(
                [
                    "claude-3-opus",
                    "claude-3-sonnet",
                    *CURRENT_MODELS,
                    "gpt-3.5-turbo",
                    "gpt-4-turbo",
                ]
            ),
        ],
    }
    [row] = await audit_rows(app)
    assert (row.action, row.actor_id, row.request_id, row.user_agent) == (
        "model.reload",
        STAFF_ID,
        "ops-script-1",
        "curl/8.5.0",
    )
    assert row.ip_address == "127.0.0.1"


@pytest.mark.parametrize(
    ("authorization", "status", "code"),
    [
        (None, 401, "UNAUTHENTICATED"),
        ("Bearer not-a-token", 401, "UNAUTHENTICATED"),
        (f"Bearer {token(7)}", 403, "FORBIDDEN"),
    ],
)
async def test_rest_reload_refuses_everyone_else(
    gql: GraphQLClient, app: Any, authorization: str | None, status: int, code: str
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = await gql.http.post(RELOAD_PATH, headers=headers)
    assert response.status_code == status
    body = response.json()
    assert body["code"] == code
    assert body["message"]
    assert await audit_rows(app) == []
