"""Dialogs over GraphQL: create, list, read, update, delete, as their owner."""

from __future__ import annotations

from tests.support import GraphQLClient

CREATE = """
mutation($input: CreateDialogInput!) {
  createDialog(input: $input) { id title systemPrompt temperature topP maxTokens stop
    model { name } agent { name } }
}"""


async def test_create_dialog_uses_the_default_model(gql: GraphQLClient) -> None:
    data = (await gql(CREATE, {"input": {"title": "First"}})).ok()
    dialog = data["createDialog"]
    assert dialog["title"] == "First"
    assert dialog["model"]["name"] == "mock"
    assert dialog["agent"] is None
