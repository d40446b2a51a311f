"""Message trees: edit, regenerate and switch in every order. After each step the active
path (``messages``) and the context the fake upstream received are checked, on both
databases; deleting a message keeps its branch whole; the ledger stays exact."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from llm_gateway.services.staff import audit, moderation
from llm_gateway.settings import Settings
from tests.chat.test_flow import chat_settings
from tests.chat_support import assert_exact, finished, new_dialog, send
from tests.factories import database_of
from tests.fakes import OpenAIFake, Scenario, fake_openai
from tests.support import GraphQLClient

PATH = """query($id: UUID!) {
  dialog(id: $id) { activeLeafId }
  messages(dialogId: $id) { edges { node { id role content parentId siblingIds
                                           siblingPosition } } }
}"""
EDIT = """mutation($input: EditMessageInput!) { editMessage(input: $input) {
  replayed userMessage { id parentId content } assistantMessage { id parentId status } } }"""
REGENERATE = """mutation($id: UUID!) { regenerate(input: {messageId: $id}) {
  userMessage { id } assistantMessage { id parentId } } }"""
SWITCH = """mutation($dialogId: UUID!, $messageId: UUID!) {
  switchBranch(input: {dialogId: $dialogId, messageId: $messageId}) { id activeLeafId } }"""


@pytest.fixture
async def openai() -> AsyncIterator[OpenAIFake]:
    async with fake_openai() as fake:
        yield fake


@pytest.fixture
def settings(database_url: str, openai: OpenAIFake) -> Settings:
    return chat_settings(database_url, openai)


class Chat:
    """One user's dialog, driven through GraphQL; answers are scripted one by one."""

    def __init__(self, gql: GraphQLClient, app: Any, openai: OpenAIFake, dialog_id: str):
        self.gql, self.app, self.openai, self.dialog_id = gql, app, openai, dialog_id
        self.text: dict[str, str] = {}  # message id -> content, to read paths by text

    async def _answered(self, payload: dict[str, Any], answer: str) -> tuple[str, str]:
        question, reply = payload["userMessage"]["id"], payload["assistantMessage"]["id"]
        message = await finished(self.app, reply)
        assert message.content == answer
        self.text[reply] = answer
        return question, reply

    async def send(self, content: str, answer: str) -> tuple[str, str]:
        self.openai.script(Scenario(text=answer))
        payload = (await send(self.gql, self.dialog_id, content)).ok()["sendMessage"]
        self.text[payload["userMessage"]["id"]] = content
        return await self._answered(payload, answer)

    async def edit(self, message_id: str, content: str, answer: str) -> tuple[str, str]:
        self.openai.script(Scenario(text=answer))
        result = await self.gql(
            EDIT, {"input": {"messageId": message_id, "content": content}}, user=7
        )
        payload = result.ok()["editMessage"]
        self.text[payload["userMessage"]["id"]] = content
        return await self._answered(payload, answer)

    async def regenerate(self, message_id: str, answer: str) -> str:
        self.openai.script(Scenario(text=answer))
        payload = (await self.gql(REGENERATE, {"id": message_id}, user=7)).ok()["regenerate"]
        return (await self._answered(payload, answer))[1]

    async def switch(self, message_id: str) -> str:
        variables = {"dialogId": self.dialog_id, "messageId": message_id}
        leaf: str = (await self.gql(SWITCH, variables, user=7)).ok()["switchBranch"]["activeLeafId"]
        return leaf

    async def path(self) -> list[dict[str, Any]]:
        data = (await self.gql(PATH, {"id": self.dialog_id}, user=7)).ok()
        nodes = [edge["node"] for edge in data["messages"]["edges"]]
        assert data["dialog"]["activeLeafId"] == nodes[-1]["id"]
        for parent, child in itertools.pairwise(nodes):
            assert child["parentId"] == parent["id"]  # a path, root first
        return nodes

    async def shown(self) -> list[str]:
        return [node["content"] for node in await self.path()]

    def sent_context(self) -> list[str]:
        return [m["content"] for m in self.openai.chat_requests[-1].json["messages"]]


async def test_edit_regenerate_and_switch_in_every_order(
    gql: GraphQLClient, app: Any, openai: OpenAIFake
) -> None:
    chat = Chat(gql, app, openai, await new_dialog(gql, model="gpt-4-turbo"))
    q1, a1 = await chat.send("Q1", "A1")
    assert (await chat.shown(), chat.sent_context()) == (["Q1", "A1"], ["Q1"])
    q2, a2 = await chat.send("Q2", "A2")
    assert await chat.shown() == ["Q1", "A1", "Q2", "A2"]
    assert chat.sent_context() == ["Q1", "A1", "Q2"]

    # Edit, then regenerate the edited question's answer.
    q2e, a2e = await chat.edit(q2, "Q2 edited", "A2e")
    assert chat.sent_context() == ["Q1", "A1", "Q2 edited"]
    path = await chat.path()
    assert [n["content"] for n in path] == ["Q1", "A1", "Q2 edited", "A2e"]
    assert (path[2]["siblingIds"], path[2]["siblingPosition"]) == ([q2, q2e], 2)
    a2r = await chat.regenerate(a2e, "A2r")
    assert chat.sent_context() == ["Q1", "A1", "Q2 edited"]
    path = await chat.path()
    assert [n["content"] for n in path] == ["Q1", "A1", "Q2 edited", "A2r"]
    assert (path[3]["siblingIds"], path[3]["siblingPosition"]) == ([a2e, a2r], 2)

    # Switch back to the original question, and go on there.
    assert await chat.switch(q2) == a2
    assert await chat.shown() == ["Q1", "A1", "Q2", "A2"]
    await chat.send("Q3", "A3")
    assert chat.sent_context() == ["Q1", "A1", "Q2", "A2", "Q3"]
    assert await chat.shown() == ["Q1", "A1", "Q2", "A2", "Q3", "A3"]

    # Switching to a question shows its newest reply, whichever sibling that is.
    assert await chat.switch(q2e) == a2r
    assert await chat.shown() == ["Q1", "A1", "Q2 edited", "A2r"]

    # Switch, then edit a second time: a third sibling, whose context skips the others.
    await chat.switch(a2)
    q2f, a2f = await chat.edit(q2, "Q2 third", "A2f")
    assert chat.sent_context() == ["Q1", "A1", "Q2 third"]
    path = await chat.path()
    assert (path[2]["siblingIds"], path[2]["siblingPosition"]) == ([q2, q2e, q2f], 3)

    # Regenerate early in the path: what came after stays on the old branch.
    a1r = await chat.regenerate(q1, "A1r")
    assert chat.sent_context() == ["Q1"]
    assert await chat.shown() == ["Q1", "A1r"]
    assert await chat.switch(a1) == a2f  # the newest message under the old answer
    # Edit the very first message: a second root.
    q1e, _ = await chat.edit(q1, "Q1 edited", "A1e")
    assert chat.sent_context() == ["Q1 edited"]
    path = await chat.path()
    assert [n["content"] for n in path] == ["Q1 edited", "A1e"]
    assert (path[0]["parentId"], path[0]["siblingIds"]) == (None, [q1, q1e])
    assert await chat.switch(q1) == a1r  # the newest under Q1 is its regenerated answer
    assert await chat.shown() == ["Q1", "A1r"]
    # Eight answers, each charged once, nothing held.
    assert len((await assert_exact(app)).usage_rows) == 8


async def test_edit_is_idempotent_and_refuses_what_cannot_be_edited(
    gql: GraphQLClient, app: Any, openai: OpenAIFake
) -> None:
    chat = Chat(gql, app, openai, await new_dialog(gql, model="gpt-4-turbo"))
    q1, a1 = await chat.send("Q1", "A1")
    edit = {"messageId": q1, "content": "Q1 again", "idempotencyKey": "edit-1"}
    openai.script(Scenario(text="A1 again"))
    first = (await gql(EDIT, {"input": edit}, user=7)).ok()["editMessage"]
    await finished(app, first["assistantMessage"]["id"])
    repeat = (await gql(EDIT, {"input": edit}, user=7)).ok()["editMessage"]
    assert repeat["replayed"] is True
    assert repeat["userMessage"]["id"] == first["userMessage"]["id"]
    assert repeat["assistantMessage"]["id"] == first["assistantMessage"]["id"]

    answer = await gql(EDIT, {"input": {"messageId": a1, "content": "x"}}, user=7)
    assert answer.codes == ["VALIDATION_FAILED"]
    theirs = await gql(EDIT, {"input": {"messageId": q1, "content": "x"}}, user=8)
    assert theirs.codes == ["NOT_FOUND"]
    empty = await gql(EDIT, {"input": {"messageId": q1, "content": " "}}, user=7)
    assert empty.codes == ["VALIDATION_FAILED"]
    other = await new_dialog(gql, model="gpt-4-turbo")
    elsewhere = await gql(SWITCH, {"dialogId": other, "messageId": q1}, user=7)
    assert elsewhere.codes == ["NOT_FOUND"]
    not_yours = await gql(SWITCH, {"dialogId": chat.dialog_id, "messageId": q1}, user=8)
    assert not_yours.codes == ["NOT_FOUND"]
    assert len((await assert_exact(app)).usage_rows) == 2


async def test_deleting_a_message_keeps_its_branch_whole(
    gql: GraphQLClient, app: Any, openai: OpenAIFake
) -> None:
    chat = Chat(gql, app, openai, await new_dialog(gql, model="gpt-4-turbo"))
    q1, a1 = await chat.send("Q1", "A1")
    q2, a2 = await chat.send("Q2", "A2")
    staff = audit.Actor(user_id=900)
    db = database_of(app)
    # A message in the middle: its reply moves up to its parent.
    async with db.transaction() as session:
        await moderation.delete_message(session, staff, uuid.UUID(chat.dialog_id), uuid.UUID(a1))
    assert await chat.shown() == ["Q1", "Q2", "A2"]
    # The active leaf: its parent becomes the leaf.
    async with db.transaction() as session:
        await moderation.delete_message(session, staff, uuid.UUID(chat.dialog_id), uuid.UUID(a2))
    assert await chat.shown() == ["Q1", "Q2"]
    await chat.send("Q3", "A3")
    assert chat.sent_context() == ["Q1", "Q2", "Q3"]
    assert await chat.shown() == ["Q1", "Q2", "Q3", "A3"]
    # The root: the next message becomes a root.
    async with db.transaction() as session:
        await moderation.delete_message(session, staff, uuid.UUID(chat.dialog_id), uuid.UUID(q1))
    path = await chat.path()
    assert [n["content"] for n in path] == ["Q2", "Q3", "A3"]
    assert path[0]["parentId"] is None
    assert q2
