"""A user never sees or changes another user's dialogs; ids reveal nothing."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.factories import add_message, create_dialog
from tests.support import GraphQLClient

OWNER, STRANGER = 1, 2

# Every operation that takes a dialog or message id, with the variables it needs.
OPERATIONS: list[tuple[str, str]] = [
    ("dialog", "query($id: UUID!) { dialog(id: $id) { id title } }"),
    ("messages", "query($id: UUID!) { messages(dialogId: $id) { edges { node { id } } } }"),
    (
        "updateDialog",
        'mutation($id: UUID!) { updateDialog(input: {id: $id, title: "pwned"}) { id } }',
    ),
    ("deleteDialog", "mutation($id: UUID!) { deleteDialog(input: {id: $id}) { id } }"),
]


@pytest.mark.parametrize(("name", "operation"), OPERATIONS, ids=[n for n, _ in OPERATIONS])
async def test_another_users_dialog_is_not_found(
    gql: GraphQLClient, app: Any, name: str, operation: str
) -> None:
    dialog_id = await create_dialog(app, OWNER, title="private")
    await add_message(app, dialog_id, OWNER, "secret")

    theirs = await gql(operation, {"id": str(dialog_id)}, user=STRANGER)
    missing = await gql(operation, {"id": str(uuid.uuid4())}, user=STRANGER)
    assert theirs.codes == ["NOT_FOUND"]
    # Indistinguishable from an id that does not exist (apart from the id itself).
    assert theirs.errors[0]["message"] == missing.errors[0]["message"]
    assert "secret" not in str(theirs.body)
    assert "private" not in str(theirs.body)

    # The owner's dialog is untouched.
    mine = await gql(
        "query($id: UUID!) { dialog(id: $id) { title lastMessage { content } } }",
        {"id": str(dialog_id)},
        user=OWNER,
    )
    assert mine.ok()["dialog"] == {"title": "private", "lastMessage": {"content": "secret"}}


async def test_lists_show_only_own_dialogs(gql: GraphQLClient, app: Any) -> None:
    await create_dialog(app, OWNER, title="mine")
    await create_dialog(app, STRANGER, title="theirs")
    query = "{ dialogs { edges { node { title } } } }"
    own = (await gql(query, user=OWNER)).ok()["dialogs"]["edges"]
    assert [e["node"]["title"] for e in own] == ["mine"]
    # Staff are no exception on the user-facing list.
    staff = (await gql(query, user=STRANGER, staff=True)).ok()["dialogs"]["edges"]
    assert [e["node"]["title"] for e in staff] == ["theirs"]
