"""Export and import of a user's own dialogs over GraphQL: round trips, validation, money."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest

from llm_gateway.services.chat.transfer import export as export_service
from llm_gateway.services.chat.transfer import importing as transfer
from llm_gateway.settings import Settings
from tests.conftest import make_settings
from tests.factories import add_message, create_dialog
from tests.platform.test_query_counts import count_statements
from tests.support import GraphQLClient

MAX_CONTENT = 2_000

EXPORT = "query($ids: [UUID!]) { exportDialogs(ids: $ids) }"
IMPORT = """
mutation($data: JSON!) {
  importDialogs(input: {data: $data}) { dialogsImported messagesImported dialogIds errors }
}"""
LIST = "{ dialogs(first: 100) { edges { node { id title updatedAt } } } }"
DIALOG = """
query($id: UUID!) {
  dialog(id: $id) {
    title systemPrompt temperature topP maxTokens stop createdAt updatedAt model { name }
  }
  messages(dialogId: $id, first: 100) { edges { node {
    id role content status modelName promptTokens completionTokens chargedTokens parentId
    createdAt completedAt
  } } }
}"""
ME = "{ me { balance { balance reserved available lifetimeUsed } } }"
LEDGER = "{ transactions(first: 100) { edges { node { kind amount messageId dialogId } } } }"


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url, max_content_length=MAX_CONTENT)


def at(day: int, hour: int = 12, minute: int = 0) -> dt.datetime:
    return dt.datetime(2025, 3, day, hour, minute, tzinfo=dt.UTC)


def iso(moment: dt.datetime) -> str:
    return moment.isoformat(timespec="microseconds")


def message(role: str, content: str, when: dt.datetime | str, **extra: Any) -> dict[str, Any]:
    created = when if isinstance(when, str) else iso(when)
    return {"role": role, "content": content, "created_at": created, **extra}


def dialog(title: str | None, *messages: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"title": title, "messages": list(messages), **extra}


def good(title: str, day: int = 1) -> dict[str, Any]:
    return dialog(
        title,
        message("user", f"question for {title}", at(day, 10)),
        message("assistant", f"answer for {title}", at(day, 10, 1)),
    )


def payload(*dialogs: dict[str, Any], version: str = "2.0") -> dict[str, Any]:
    return {"version": version, "dialogs": list(dialogs)}


async def export(gql: GraphQLClient, ids: list[str] | None = None, user: int = 1) -> Any:
    return (await gql(EXPORT, {"ids": ids}, user=user)).ok()["exportDialogs"]


async def import_(gql: GraphQLClient, data: Any, user: int = 1) -> dict[str, Any]:
    result: dict[str, Any] = (await gql(IMPORT, {"data": data}, user=user)).ok()["importDialogs"]
    return result


async def titles(gql: GraphQLClient, user: int = 1) -> list[str | None]:
    edges = (await gql(LIST, user=user)).ok()["dialogs"]["edges"]
    return [e["node"]["title"] for e in edges]


async def read(gql: GraphQLClient, dialog_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    data = (await gql(DIALOG, {"id": dialog_id})).ok()
    return data["dialog"], [e["node"] for e in data["messages"]["edges"]]


async def seed(gql: GraphQLClient, app: Any) -> list[str]:
    """Two dialogs with a conversation each, the second the more recently active."""
    created = []
    for title, fields in (
        ("Trip", {"model": "gpt-4-turbo", "temperature": 1.5, "stop": ["END"]}),
        ("Code", {"systemPrompt": "Be terse.", "maxTokens": 500, "topP": 0.5}),
    ):
        result = await gql(
            "mutation($input: CreateDialogInput!) { createDialog(input: $input) { id } }",
            {"input": {"title": title, **fields}},
        )
        created.append(result.ok()["createDialog"]["id"])
    for n, dialog_id in enumerate(created):
        for i, role in enumerate(["user", "assistant", "user", "assistant"]):
            when = at(1 + n, 9, i)
            await add_message(app, uuid.UUID(dialog_id), 1, f"{role} {n}.{i}", role=role, at=when)
    return created


def without_ids(export: dict[str, Any]) -> list[dict[str, Any]]:
    """The dialogs with every id replaced by its message's position: the same tree."""
    shaped = []
    for d in export["dialogs"]:
        place = {m["id"]: i for i, m in enumerate(d["messages"])}
        messages = [
            {**m, "id": place[m["id"]], "parent_id": place.get(m["parent_id"])}
            for m in d["messages"]
        ]
        active = place.get(d["active_message_id"])
        shaped.append(
            {**{k: v for k, v in d.items() if k != "id"}, "messages": messages}
            | {"active_message_id": active}
        )
    return shaped


# --- export ---------------------------------------------------------------------------------


async def test_export_holds_the_callers_dialogs_with_messages_oldest_first(
    gql: GraphQLClient, app: Any
) -> None:
    trip, code = await seed(gql, app)
    await create_dialog(app, 2, title="someone else's")

    data = await export(gql)

    assert data["version"] == "3.0"
    assert data["user_id"] == 1
    assert (data["dialog_count"], data["message_count"]) == (2, 8)
    assert dt.datetime.fromisoformat(data["exported_at"]).utcoffset() == dt.timedelta(0)
    assert [d["id"] for d in data["dialogs"]] == [code, trip]  # most recent activity first
    first = data["dialogs"][1]
    assert first["title"] == "Trip"
    assert first["model_name"] == "gpt-4-turbo"
    assert first["agent_config"] == {"temperature": 1.5, "stop": ["END"]}
    assert data["dialogs"][0]["agent_config"] == {"top_p": 0.5, "max_tokens": 500}
    assert data["dialogs"][0]["system_prompt"] == "Be terse."
    assert [m["content"] for m in first["messages"]] == [
        "user 0.0",
        "assistant 0.1",
        "user 0.2",
        "assistant 0.3",
    ]
    assert first["messages"][1] == {
        "id": first["messages"][1]["id"],
        "parent_id": first["messages"][0]["id"],
        "role": "assistant",
        "content": "assistant 0.1",
        "status": "complete",
        "model_name": None,
        "prompt_tokens": None,
        "completion_tokens": None,
        "created_at": "2025-03-01T09:01:00.000000+00:00",
    }

    only = await export(gql, [trip, trip])
    assert [d["id"] for d in only["dialogs"]] == [trip]
    assert only["message_count"] == 4
    assert first["active_message_id"] == first["messages"][3]["id"]
    assert (await export(gql, [])) | {"exported_at": None} == {
        "version": "3.0",
        "exported_at": None,
        "user_id": 1,
        "dialog_count": 0,
        "message_count": 0,
        "dialogs": [],
    }


async def test_another_users_or_a_deleted_dialog_is_not_found(gql: GraphQLClient, app: Any) -> None:
    mine = str(await create_dialog(app, 1, title="mine"))
    theirs = str(await create_dialog(app, 2, title="theirs"))
    gone = str(await create_dialog(app, 1, title="gone"))
    (await gql("mutation($id: UUID!) { deleteDialog(input: {id: $id}) { id } }", {"id": gone}))

    for ids in ([theirs], [mine, theirs], [gone]):
        result = await gql(EXPORT, {"ids": ids})
        assert result.codes == ["NOT_FOUND"], ids
        assert result.data is None
    assert [d["title"] for d in (await export(gql))["dialogs"]] == ["mine"]
    assert [d["title"] for d in (await export(gql, user=2))["dialogs"]] == ["theirs"]


async def test_an_export_too_large_asks_for_ids(
    gql: GraphQLClient, app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    trip, _ = await seed(gql, app)
    monkeypatch.setattr(export_service, "MAX_EXPORT_DIALOGS", 1)
    result = await gql(EXPORT)
    assert result.codes == ["VALIDATION_FAILED"]
    assert "ids" in result.errors[0]["message"]
    assert len((await export(gql, [trip]))["dialogs"]) == 1

    monkeypatch.setattr(export_service, "MAX_EXPORT_MESSAGES", 3)
    assert (await gql(EXPORT, {"ids": [trip]})).codes == ["VALIDATION_FAILED"]


async def test_export_statement_count_does_not_grow_with_dialogs(
    gql: GraphQLClient, app: Any
) -> None:
    for owner, count in ((5, 2), (6, 8)):
        for i in range(count):
            dialog_id = await create_dialog(app, owner, model="gpt-4-turbo" if i % 2 else None)
            await add_message(app, dialog_id, owner, f"hello {i}")
    with count_statements(app) as small:
        assert len((await export(gql, user=5))["dialogs"]) == 2
    with count_statements(app) as large:
        assert len((await export(gql, user=6))["dialogs"]) == 8
    assert len(small) == len(large), (small, large)


# --- round trip -----------------------------------------------------------------------------


async def test_export_then_import_gives_the_same_dialogs_under_new_ids(
    gql: GraphQLClient, app: Any
) -> None:
    originals = await seed(gql, app)
    before = await export(gql)

    result = await import_(gql, before)

    assert result["errors"] == []
    assert (result["dialogsImported"], result["messagesImported"]) == (2, 8)
    assert not set(result["dialogIds"]) & set(originals)
    after = await export(gql, result["dialogIds"])
    assert [d["id"] for d in after["dialogs"]] == result["dialogIds"]
    assert without_ids(after) == without_ids(before)
    # Both copies are there: the originals were not touched.
    assert len((await export(gql))["dialogs"]) == 4

    # One branch, each message hanging off the one before, as in the chat flow.
    _, messages = await read(gql, result["dialogIds"][0])
    assert [m["parentId"] for m in messages] == [
        None,
        messages[0]["id"],
        messages[1]["id"],
        messages[2]["id"],
    ]


async def test_a_round_trip_through_a_second_user_makes_them_the_owner(
    gql: GraphQLClient, app: Any
) -> None:
    await seed(gql, app)
    result = await import_(gql, await export(gql), user=2)
    assert result["dialogsImported"] == 2
    assert await titles(gql, user=2) == ["Code", "Trip"]
    assert (await gql(EXPORT, {"ids": result["dialogIds"]}, user=1)).codes == ["NOT_FOUND"]


# --- import validation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("broken", "problem"),
    [
        (dialog("x", message("bot", "hi", at(1))), "messages[0].role must be user, assistant"),
        (dialog("x", message("user", "  \n", at(1))), "messages[0].content must not be empty"),
        (
            dialog("x", message("user", "y" * (MAX_CONTENT + 1), at(1))),
            f"messages[0].content must be at most {MAX_CONTENT} characters",
        ),
        (dialog("x", message("user", "hi", "yesterday")), "messages[0].created_at is not"),
        (dialog("x", {"role": "user", "content": "hi"}), "messages[0].created_at is required"),
        (
            dialog("x", message("user", "hi", at(1)), message("system", "late", at(2))),
            "messages[1]: only the first message may be a system message",
        ),
        (
            dialog("x", message("user", "hi", at(1)), agent_config={"temperature": 2.5}),
            "agent_config: temperature must be from 0 to 2.0",
        ),
        (
            dialog(
                "x",
                message("user", "hi", at(1)),
                model_name="claude-3-opus",
                agent_config={"temperature": 1.5},
            ),
            "agent_config: temperature must be from 0 to 1.0",
        ),
        (
            dialog("x", message("user", "hi", at(1)), agent_config={"max_tokens": "many"}),
            "agent_config.max_tokens must be a number",
        ),
        (dialog("y" * 256, message("user", "hi", at(1))), "title must be at most 255"),
        ({"title": "x", "messages": None}, "messages must be a list"),
        ("not a dialog", "must be an object"),
    ],
)
async def test_a_broken_dialog_is_reported_and_the_good_ones_imported(
    gql: GraphQLClient, broken: Any, problem: str
) -> None:
    result = await import_(gql, payload(good("before", 1), broken, good("after", 2)))

    assert result["dialogsImported"] == 2
    assert result["messagesImported"] == 4
    assert len(result["errors"]) == 1, result["errors"]
    assert result["errors"][0].startswith(f"dialogs[1] skipped: {problem}"), result["errors"]
    assert await titles(gql) == ["after", "before"]


async def test_every_problem_of_a_dialog_is_reported(gql: GraphQLClient) -> None:
    broken = dialog(
        "x",
        message("bot", "hi", at(1)),
        message("user", "", at(2)),
        agent_config={"top_p": 0},
    )
    result = await import_(gql, payload(broken))
    assert result["dialogsImported"] == 0
    assert [e.split(":")[1].strip().split(" ")[0] for e in result["errors"]] == [
        "agent_config",
        "messages[0].role",
        "messages[1].content",
    ]
    assert await titles(gql) == []


async def test_an_unknown_or_disabled_model_falls_back_to_the_default_with_a_warning(
    gql: GraphQLClient,
) -> None:
    result = await import_(
        gql,
        payload(
            good("known") | {"model_name": "claude-3-opus"},
            good("unknown") | {"model_name": "gpt-5-ultra"},
            good("disabled") | {"model_name": "GigaChat"},
        ),
    )
    assert result["dialogsImported"] == 3
    assert result["errors"] == [
        "dialogs[1] imported with a change: model 'gpt-5-ultra' is not available; "
        "the default model 'mock' is used.",
        "dialogs[2] imported with a change: model 'GigaChat' is not available; "
        "the default model 'mock' is used.",
    ]
    models = [(await read(gql, i))[0]["model"]["name"] for i in result["dialogIds"]]
    assert models == ["claude-3-opus", "mock", "mock"]


async def test_a_system_message_first_becomes_the_system_prompt(gql: GraphQLClient) -> None:
    result = await import_(
        gql,
        payload(
            dialog(
                None,
                message("system", "You are a pirate.", at(1, 8)),
                message("user", "Where is the treasure? " * 5, at(1, 9)),
                message("assistant", "Arr.", at(1, 10)),
            )
        ),
    )
    assert result["errors"] == []
    found, messages = await read(gql, result["dialogIds"][0])
    assert found["systemPrompt"] == "You are a pirate."
    assert [m["role"] for m in messages] == ["USER", "ASSISTANT"]
    # No title in the data: one is made from the first question, as the chat flow does.
    assert found["title"] == "Where is the treasure? Where is the treasure? Where is the…"


async def test_an_unfinished_answer_without_text_is_left_out(gql: GraphQLClient) -> None:
    result = await import_(
        gql,
        payload(
            dialog(
                "t",
                message("user", "hi", at(1)),
                message("assistant", "", at(1, 13), status="failed"),
            )
        ),
    )
    assert result["dialogsImported"] == 1
    assert result["messagesImported"] == 1
    assert result["errors"] == [
        "dialogs[0] imported with a change: messages[1] skipped: an unfinished answer with no text."
    ]


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ([], "data"),
        ("{}", "data"),
        ({"version": "9.0", "dialogs": []}, "data.version"),
        ({"version": "2.0"}, "data.dialogs"),
        ({"version": "2.0", "dialogs": {}}, "data.dialogs"),
        (
            payload(*[dialog(f"d{i}") for i in range(transfer.MAX_IMPORT_DIALOGS + 1)]),
            "data.dialogs",
        ),
        (
            payload(
                dialog("a", *[message("user", "m", at(1))] * 3000),
                dialog("b", *[message("user", "m", at(1))] * 2001),
            ),
            "data.dialogs",
        ),
    ],
)
async def test_a_payload_that_is_not_an_acceptable_export_is_refused_whole(
    gql: GraphQLClient, data: Any, field: str
) -> None:
    result = await gql(IMPORT, {"data": data})
    assert result.codes == ["VALIDATION_FAILED"]
    assert result.errors[0]["extensions"]["field"] == field
    assert await titles(gql) == []


async def test_a_payload_over_the_size_bound_is_refused(
    gql: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transfer, "MAX_IMPORT_BYTES", 1_000)
    result = await gql(IMPORT, {"data": payload(good("a"), dialog("b" * 1_000))})
    assert result.codes == ["VALIDATION_FAILED"]
    assert result.errors[0]["extensions"]["field"] == "data"
    assert await titles(gql) == []


# --- money ----------------------------------------------------------------------------------


async def test_forged_charges_and_token_counts_change_no_balance_ledger_or_message(
    gql: GraphQLClient,
) -> None:
    before = (await gql(ME)).ok()["me"]["balance"]
    forged = {
        "prompt_tokens": 900_000,
        "completion_tokens": 900_000,
        "charged_tokens": 5_000,
        "cost": "12.50",
        "cost_usd": "12.50",
        "status": "failed",
    }
    data = payload(
        dialog(
            "forged",
            message("user", "hi", at(1), **forged),
            message("assistant", "hello", at(1, 13), model_name="gpt-4-turbo", **forged),
        )
        | {"charged_tokens": 1, "balance": 1_000_000},
    ) | {"balance": 1_000_000, "transactions": [{"kind": "topup", "amount": 1_000_000}]}

    result = await import_(gql, data)

    assert result["errors"] == []
    assert (await gql(ME)).ok()["me"]["balance"] == before
    ledger = (await gql(LEDGER)).ok()["transactions"]["edges"]
    assert [(e["node"]["kind"], e["node"]["amount"]) for e in ledger] == [("GRANT", 10_000)]
    _, messages = await read(gql, result["dialogIds"][0])
    for stored in messages:
        assert stored["status"] == "COMPLETE"
        assert stored["chargedTokens"] is None
        assert stored["promptTokens"] is None
        assert stored["completionTokens"] is None
        assert stored["completedAt"] == stored["createdAt"]
    # Who answered is kept as information; it costs nothing.
    assert [m["modelName"] for m in messages] == [None, "gpt-4-turbo"]


# --- timestamps -----------------------------------------------------------------------------


async def test_imported_dialogs_are_listed_by_their_kept_activity_time(
    gql: GraphQLClient, app: Any
) -> None:
    await create_dialog(app, 1, title="today")
    result = await import_(
        gql,
        payload(
            good("march 5", 5) | {"updated_at": iso(at(5, 18))},
            good("march 2", 2),  # no dialog times: from its messages
            good("march 9", 9) | {"created_at": "2025-03-09T07:00:00+03:00"},
        ),
    )
    assert result["errors"] == []
    assert await titles(gql) == ["today", "march 9", "march 5", "march 2"]

    march5, _ = await read(gql, result["dialogIds"][0])
    assert (march5["createdAt"], march5["updatedAt"]) == (
        "2025-03-05T10:00:00+00:00",
        "2025-03-05T18:00:00+00:00",
    )
    march2, _ = await read(gql, result["dialogIds"][1])
    assert (march2["createdAt"], march2["updatedAt"]) == (
        "2025-03-02T10:00:00+00:00",
        "2025-03-02T10:01:00+00:00",
    )
    march9, _ = await read(gql, result["dialogIds"][2])
    assert march9["createdAt"] == "2025-03-09T04:00:00+00:00"


async def test_timestamps_without_offset_are_utc_and_the_future_is_clamped_to_now(
    gql: GraphQLClient,
) -> None:
    started = dt.datetime.now(dt.UTC)
    result = await import_(
        gql,
        payload(
            dialog(
                "times",
                message("user", "naive", "2025-03-01T10:00:00"),
                # Out of order: the payload's order wins, a microsecond later.
                message("assistant", "earlier", "2025-03-01T09:00:00Z"),
                message("user", "future", "2999-01-01T00:00:00+00:00"),
            )
        ),
    )
    finished = dt.datetime.now(dt.UTC)
    assert result["errors"] == []
    found, messages = await read(gql, result["dialogIds"][0])
    assert [m["content"] for m in messages] == ["naive", "earlier", "future"]
    moments = [dt.datetime.fromisoformat(m["createdAt"]) for m in messages]
    assert moments[0] == dt.datetime(2025, 3, 1, 10, tzinfo=dt.UTC)
    assert moments[1] == moments[0] + dt.timedelta(microseconds=1)
    assert started <= moments[2] <= finished
    assert dt.datetime.fromisoformat(found["updatedAt"]) == moments[2]


# --- the previous service's format ------------------------------------------------------------


async def test_a_version_1_export_of_the_old_service_imports(gql: GraphQLClient) -> None:
    old = {
        "version": "1.0",
        "exported_at": "2024-11-02T08:00:00.123456",
        "user_id": 77,
        "dialog_count": 1,
        "message_count": 2,
        "dialogs": [
            {
                "id": 4812,
                "title": "Old chat",
                "system_prompt": "Be kind.",
                "model_name": "gpt-4",
                "agent_config": {"temperature": 0.7, "max_tokens": 800.0, "agent": "helper"},
                "created_at": "2024-10-30T12:00:00.000001",
                "updated_at": "2024-10-30T12:05:00",
                "messages": [
                    {
                        "role": "user",
                        "content": "hi",
                        "prompt_tokens": None,
                        "completion_tokens": None,
                        "created_at": "2024-10-30T12:00:01",
                    },
                    {
                        "role": "assistant",
                        "content": "hello there",
                        "prompt_tokens": 12,
                        "completion_tokens": 3,
                        "created_at": "2024-10-30T12:00:02",
                    },
                ],
            }
        ],
    }
    result = await import_(gql, old)
    assert result["dialogsImported"] == 1
    assert result["messagesImported"] == 2
    assert result["errors"] == [
        "dialogs[0] imported with a change: model 'gpt-4' is not available; "
        "the default model 'mock' is used.",
        "dialogs[0] imported with a change: agent_config keys ignored: agent.",
    ]
    found, messages = await read(gql, result["dialogIds"][0])
    assert found["title"] == "Old chat"
    assert found["systemPrompt"] == "Be kind."
    assert (found["temperature"], found["maxTokens"]) == (0.7, 800)
    assert (found["createdAt"], found["updatedAt"]) == (
        "2024-10-30T12:00:00.000001+00:00",
        "2024-10-30T12:05:00+00:00",
    )
    assert [(m["role"], m["content"], m["promptTokens"]) for m in messages] == [
        ("USER", "hi", None),
        ("ASSISTANT", "hello there", None),
    ]

    # Its import endpoint took the bare list, with no version.
    bare = await import_(gql, {"dialogs": [{"messages": [message("user", "plain", at(1))]}]})
    assert bare["dialogsImported"] == 1
    assert (await read(gql, bare["dialogIds"][0]))[0]["title"] == "plain"


# --- the message tree -------------------------------------------------------------------------


def node(key: str, role: str, parent: str | None, minute: int) -> dict[str, Any]:
    return message(role, key, at(1, 10, minute), id=key, parent_id=parent)


async def test_a_3_0_import_keeps_the_tree_and_the_active_branch(
    gql: GraphQLClient, app: Any
) -> None:
    tree = dialog(
        "branches",
        node("q1", "user", None, 0),
        node("a1", "assistant", "q1", 1),
        node("q2", "user", "a1", 2),
        node("a2", "assistant", "q2", 3),
        node("q2b", "user", "a1", 4),  # an edited question
        # An empty unfinished answer is left out; its reply hangs off its question.
        {**node("gone", "assistant", "q2b", 5), "content": "", "status": "failed"},
        node("q3", "user", "gone", 6),
        node("a3", "assistant", "q3", 7),
        active_message_id="q2",  # the branch through q2: its newest reply is the leaf
    )
    result = await import_(gql, payload(tree, version="3.0"))
    assert result["errors"] == [
        "dialogs[0] imported with a change: messages[5] skipped: an unfinished answer with no text."
    ]
    found, messages = await read(gql, result["dialogIds"][0])
    assert [m["content"] for m in messages] == ["q1", "a1", "q2", "a2"]
    data = await export(gql, result["dialogIds"])
    exported = data["dialogs"][0]
    place = {m["id"]: m["content"] for m in exported["messages"]}
    assert {m["content"]: place.get(m["parent_id"]) for m in exported["messages"]} == {
        "q1": None,
        "a1": "q1",
        "q2": "a1",
        "a2": "q2",
        "q2b": "a1",
        "q3": "q2b",
        "a3": "q3",
    }
    assert place[exported["active_message_id"]] == "a2"
    assert found["title"] == "branches"


@pytest.mark.parametrize(
    ("broken", "problem"),
    [
        ({"id": 7}, "messages[1].id must be a string of 1 to 100 characters."),
        ({"id": "q1"}, "messages[1].id repeats an earlier message's id."),
        ({"parent_id": "later"}, "messages[1].parent_id must be the id of an earlier message."),
    ],
)
async def test_a_3_0_import_refuses_a_broken_tree(
    gql: GraphQLClient, app: Any, broken: dict[str, Any], problem: str
) -> None:
    tree = dialog(
        "broken",
        node("q1", "user", None, 0),
        {**node("a1", "assistant", "q1", 1), **broken},
        node("later", "user", "a1", 2),
    )
    fine = dialog("fine", node("q", "user", None, 0))
    result = await import_(gql, payload(tree, fine, version="3.0"))
    assert result["dialogsImported"] == 1
    assert f"dialogs[0] skipped: {problem}" in result["errors"]


async def test_an_older_export_with_regenerated_answers_becomes_one_branch(
    gql: GraphQLClient, app: Any
) -> None:
    flat = dialog(
        "flat",
        message("user", "Q1", at(1, 10, 0)),
        message("assistant", "A1", at(1, 10, 1)),
        message("assistant", "A1 again", at(1, 10, 2)),
        message("user", "Q2", at(1, 10, 3)),
        message("assistant", "A2", at(1, 10, 4)),
    )
    result = await import_(gql, payload(flat, version="2.0"))
    _, messages = await read(gql, result["dialogIds"][0])
    # The newest answer is the context of the next question; the older one its sibling.
    assert [m["content"] for m in messages] == ["Q1", "A1 again", "Q2", "A2"]
