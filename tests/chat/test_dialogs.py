"""Dialogs over GraphQL: create, list, read, update, delete, always as their owner."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest

from tests.factories import add_message, create_dialog
from tests.support import GraphQLClient

CREATE = """
mutation($input: CreateDialogInput!) {
  createDialog(input: $input) {
    id title systemPrompt temperature topP maxTokens stop createdAt updatedAt
    model { name } agent { id name }
  }
}"""
UPDATE = """
mutation($input: UpdateDialogInput!) {
  updateDialog(input: $input) {
    id title systemPrompt temperature topP maxTokens stop updatedAt model { name } agent { name }
  }
}"""
DELETE = "mutation($id: UUID!) { deleteDialog(input: {id: $id}) { id } }"
GET = "query($id: UUID!) { dialog(id: $id) { id title model { name } } }"
LIST = """
query($first: Int, $after: String, $search: String) {
  dialogs(first: $first, after: $after, search: $search) {
    edges { cursor node { id title } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}"""
MESSAGES = """
query($dialogId: UUID!, $first: Int, $after: String) {
  messages(dialogId: $dialogId, first: $first, after: $after) {
    edges { cursor node { id role content status dialogId } }
    pageInfo { hasNextPage endCursor }
  }
}"""


async def create(gql: GraphQLClient, user: int = 1, **fields: Any) -> dict[str, Any]:
    result: dict[str, Any] = (await gql(CREATE, {"input": fields}, user=user)).ok()["createDialog"]
    return result


async def test_create_dialog_defaults_to_the_default_model(gql: GraphQLClient) -> None:
    dialog = await create(gql, title="First")
    assert dialog["title"] == "First"
    assert dialog["model"]["name"] == "mock"
    assert dialog["agent"] is None
    assert dialog["temperature"] is None
    assert dialog["createdAt"] == dialog["updatedAt"]


async def test_create_dialog_with_model_agent_and_params(gql: GraphQLClient) -> None:
    agents = (await gql("{ agents { id name } }")).ok()["agents"]
    coder = next(a for a in agents if a["name"] == "code-assistant")
    dialog = await create(
        gql,
        title="  Code  ",
        model="gpt-4-turbo",
        agentId=coder["id"],
        systemPrompt="Be terse.",
        temperature=1.5,
        topP=0.9,
        maxTokens=4096,
        stop=["END"],
    )
    assert dialog["title"] == "Code"
    assert dialog["model"]["name"] == "gpt-4-turbo"
    assert dialog["agent"] == {"id": coder["id"], "name": "code-assistant"}
    assert (dialog["temperature"], dialog["topP"], dialog["maxTokens"], dialog["stop"]) == (
        1.5,
        0.9,
        4096,
        ["END"],
    )


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"model": "no-such-model"}, "model"),
        ({"model": "GigaChat"}, "model"),  # seeded disabled
        ({"model": "claude-3-opus", "temperature": 1.5}, "temperature"),  # Anthropic: 0..1
        ({"model": "gpt-4-turbo", "temperature": 2.5}, "temperature"),  # OpenAI: 0..2
        ({"temperature": -0.1}, "temperature"),
        ({"topP": 0}, "topP"),
        ({"topP": 1.5}, "topP"),
        ({"model": "gpt-4-turbo", "maxTokens": 4097}, "maxTokens"),  # over the model's cap
        ({"maxTokens": 0}, "maxTokens"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"stop": [""]}, "stop"),
        ({"title": "x" * 256}, "title"),
        ({"agentId": 9999}, "agentId"),
    ],
)
async def test_create_dialog_rejects_bad_input(
    gql: GraphQLClient, fields: dict[str, Any], field: str
) -> None:
    result = await gql(CREATE, {"input": fields})
    assert result.status == 200
    assert result.data is None
    assert result.codes == ["VALIDATION_FAILED"]
    assert result.errors[0]["extensions"]["field"] == field
    # Nothing was created.
    assert (await gql(LIST)).ok()["dialogs"]["edges"] == []


async def test_disabled_model_error_lists_available_models(gql: GraphQLClient) -> None:
    result = await gql(CREATE, {"input": {"model": "GigaChat"}})
    available = result.errors[0]["extensions"]["available"]
    assert "mock" in available
    assert "GigaChat" not in available


async def test_system_prompt_over_the_content_limit_is_rejected(gql: GraphQLClient) -> None:
    result = await gql(CREATE, {"input": {"systemPrompt": "x" * 100_001}})
    assert result.codes == ["VALIDATION_FAILED"]


async def test_update_dialog_changes_only_given_fields(gql: GraphQLClient) -> None:
    dialog = await create(gql, title="Old", systemPrompt="Keep me", temperature=0.3)
    result = (await gql(UPDATE, {"input": {"id": dialog["id"], "title": "New"}})).ok()
    updated = result["updateDialog"]
    assert updated["title"] == "New"
    assert updated["systemPrompt"] == "Keep me"
    assert updated["temperature"] == 0.3
    assert updated["updatedAt"] > dialog["updatedAt"]

    cleared = (
        await gql(UPDATE, {"input": {"id": dialog["id"], "systemPrompt": None, "stop": None}})
    ).ok()["updateDialog"]
    assert cleared["systemPrompt"] is None
    assert cleared["title"] == "New"

    read = (await gql(GET, {"id": dialog["id"]})).ok()["dialog"]
    assert read["title"] == "New"


async def test_update_dialog_revalidates_params_for_a_new_model(gql: GraphQLClient) -> None:
    dialog = await create(gql, model="gpt-4-turbo", temperature=1.5)
    result = await gql(UPDATE, {"input": {"id": dialog["id"], "model": "claude-3-opus"}})
    assert result.codes == ["VALIDATION_FAILED"]
    assert result.errors[0]["extensions"]["field"] == "temperature"
    # Unchanged after the refusal.
    assert (await gql(GET, {"id": dialog["id"]})).ok()["dialog"]["model"]["name"] == ("gpt-4-turbo")
    moved = (
        await gql(
            UPDATE,
            {"input": {"id": dialog["id"], "model": "claude-3-opus", "temperature": 0.7}},
        )
    ).ok()["updateDialog"]
    assert moved["model"]["name"] == "claude-3-opus"
    assert moved["temperature"] == 0.7


async def test_update_dialog_rejects_null_model_and_bad_values(gql: GraphQLClient) -> None:
    dialog = await create(gql)
    cases: list[tuple[dict[str, Any], str | None]] = [
        ({"model": None}, None),
        ({"maxTokens": 100_000}, "maxTokens"),
    ]
    for patch, field in cases:
        result = await gql(UPDATE, {"input": {"id": dialog["id"], **patch}})
        assert result.codes == ["VALIDATION_FAILED"], patch
        assert result.errors[0]["extensions"].get("field") == field


async def test_update_and_clear_agent(gql: GraphQLClient) -> None:
    agents = (await gql("{ agents { id name } }")).ok()["agents"]
    dialog = await create(gql)
    with_agent = await gql(UPDATE, {"input": {"id": dialog["id"], "agentId": agents[0]["id"]}})
    assert with_agent.ok()["updateDialog"]["agent"]["name"] == agents[0]["name"]
    without = await gql(UPDATE, {"input": {"id": dialog["id"], "agentId": None}})
    assert without.ok()["updateDialog"]["agent"] is None


async def test_delete_dialog_is_gone_from_every_read(gql: GraphQLClient) -> None:
    keep = await create(gql, title="keep")
    gone = await create(gql, title="gone")
    assert (await gql(DELETE, {"id": gone["id"]})).ok()["deleteDialog"]["id"] == gone["id"]

    titles = [e["node"]["title"] for e in (await gql(LIST)).ok()["dialogs"]["edges"]]
    assert titles == ["keep"]
    assert (await gql(GET, {"id": gone["id"]})).codes == ["NOT_FOUND"]
    assert (await gql(MESSAGES, {"dialogId": gone["id"]})).codes == ["NOT_FOUND"]
    assert (await gql(UPDATE, {"input": {"id": gone["id"], "title": "x"}})).codes == ["NOT_FOUND"]
    assert (await gql(DELETE, {"id": gone["id"]})).codes == ["NOT_FOUND"]
    assert (await gql(GET, {"id": keep["id"]})).ok()["dialog"]["title"] == "keep"


async def test_dialogs_are_listed_by_latest_activity_and_paged(
    gql: GraphQLClient, app: Any
) -> None:
    ids = [uuid.UUID((await create(gql, title=f"d{i}"))["id"]) for i in range(5)]
    # Renaming d1 makes it the most recently active.
    (await gql(UPDATE, {"input": {"id": str(ids[1]), "title": "d1*"}})).ok()

    seen: list[str] = []
    after = None
    pages = 0
    while True:
        page = (await gql(LIST, {"first": 2, "after": after})).ok()["dialogs"]
        pages += 1
        seen += [e["node"]["title"] for e in page["edges"]]
        assert page["pageInfo"]["hasPreviousPage"] is (after is not None)
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert pages == 3
    assert seen == ["d1*", "d4", "d3", "d2", "d0"]


async def test_dialog_list_search_matches_titles_case_insensitively(gql: GraphQLClient) -> None:
    await create(gql, title="Trip to Paris")
    await create(gql, title="Groceries")
    await create(gql, title="100% done_ok")
    found = (await gql(LIST, {"search": "PARIS"})).ok()["dialogs"]["edges"]
    assert [e["node"]["title"] for e in found] == ["Trip to Paris"]
    # LIKE wildcards in the search are literal.
    literal = (await gql(LIST, {"search": "0% d"})).ok()["dialogs"]["edges"]
    assert [e["node"]["title"] for e in literal] == ["100% done_ok"]
    assert (await gql(LIST, {"search": "_"})).ok()["dialogs"]["edges"][0]["node"]["title"] == (
        "100% done_ok"
    )


@pytest.mark.parametrize("first", [0, -1, 101])
async def test_page_size_is_capped(gql: GraphQLClient, first: int) -> None:
    result = await gql(LIST, {"first": first})
    assert result.codes == ["VALIDATION_FAILED"]
    assert result.errors[0]["extensions"]["field"] == "first"


@pytest.mark.parametrize("cursor", ["garbage", "W10", "WyJ4IiwieSJd"])
async def test_a_forged_cursor_is_a_validation_error(gql: GraphQLClient, cursor: str) -> None:
    result = await gql(LIST, {"after": cursor})
    assert result.codes == ["VALIDATION_FAILED"]


async def test_messages_are_listed_oldest_first_with_cursors(gql: GraphQLClient, app: Any) -> None:
    dialog_id = uuid.UUID((await create(gql))["id"])
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    for i in range(5):
        role = "user" if i % 2 == 0 else "assistant"
        await add_message(app, dialog_id, 1, f"m{i}", role=role, at=start + dt.timedelta(i))

    first = (await gql(MESSAGES, {"dialogId": str(dialog_id), "first": 3})).ok()["messages"]
    assert [e["node"]["content"] for e in first["edges"]] == ["m0", "m1", "m2"]
    assert [e["node"]["role"] for e in first["edges"]] == ["USER", "ASSISTANT", "USER"]
    assert first["pageInfo"]["hasNextPage"] is True
    rest = (
        await gql(
            MESSAGES,
            {"dialogId": str(dialog_id), "first": 3, "after": first["pageInfo"]["endCursor"]},
        )
    ).ok()["messages"]
    assert [e["node"]["content"] for e in rest["edges"]] == ["m3", "m4"]
    assert rest["pageInfo"]["hasNextPage"] is False

    last = (
        await gql(
            "query($id: UUID!) { dialog(id: $id) { lastMessage { content } } }",
            {"id": str(dialog_id)},
        )
    ).ok()
    assert last["dialog"]["lastMessage"]["content"] == "m4"


async def test_dialog_ids_are_validated(gql: GraphQLClient) -> None:
    result = await gql(GET, {"id": "not-a-uuid"})
    assert result.status == 200
    assert result.codes == ["GRAPHQL_VALIDATION_FAILED"]


async def test_created_dialog_is_visible_through_the_factory_too(
    gql: GraphQLClient, app: Any
) -> None:
    dialog_id = await create_dialog(app, 1, title="from service")
    read = (await gql(GET, {"id": str(dialog_id)})).ok()["dialog"]
    assert read["title"] == "from service"
