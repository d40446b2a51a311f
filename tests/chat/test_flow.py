"""The chat flow against fake upstreams: idempotency, regenerate, context, params, shutdown,
restart recovery, late joiners and disconnecting subscribers."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import select, update

from llm_gateway.app import create_app
from llm_gateway.db.models import Dialog, Message, Model
from llm_gateway.services.chat import dialogs
from llm_gateway.services.chat import sending as chat
from llm_gateway.services.chat.generation import outcomes
from llm_gateway.services.chat.planning import Overrides
from llm_gateway.services.money.balances import MoneyPolicy
from llm_gateway.services.plumbing.broker_events import dialog_channel
from llm_gateway.settings import Settings
from tests.chat_support import assert_exact, finished, money, new_dialog, send
from tests.conftest import make_settings
from tests.factories import database_of
from tests.fakes import DEFAULT_OPENAI_KEY, OpenAIFake, Scenario, fake_openai
from tests.live import graphql_socket, live_server
from tests.support import GraphQLClient, token

REPLY = "Paris is the capital of France."
EVENTS = """subscription($dialogId: UUID!) {
  messageEvents(dialogId: $dialogId) {
    __typename
    ... on MessageStarted { message { id status } }
    ... on MessageDelta { messageId seq text }
    ... on MessageCompleted { message { id status content } usage { chargedTokens }
                              balance { balance } }
    ... on MessageFailed { messageId code errorMessage final { status content } }
  }
}"""


@pytest.fixture
async def openai() -> AsyncIterator[OpenAIFake]:
    async with fake_openai() as fake:
        yield fake


def chat_settings(database_url: str, openai: OpenAIFake, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "openai_api_key": DEFAULT_OPENAI_KEY,
        "openai_base_url": openai.base_url,
        "provider_retry_base_seconds": 0.01,
        "provider_first_token_timeout": 2.0,
        "provider_idle_timeout": 2.0,
        "generation_flush_seconds": 0.01,
        "shutdown_grace_seconds": 0.2,
        **overrides,
    }
    return make_settings(database_url, **values)


@pytest.fixture
def settings(database_url: str, openai: OpenAIFake) -> Settings:
    return chat_settings(database_url, openai)


async def test_params_are_merged_and_really_sent(
    gql: GraphQLClient, app: Any, openai: OpenAIFake
) -> None:
    agents = (await gql("{ agents { id name } }")).ok()["agents"]
    coder = next(a["id"] for a in agents if a["name"] == "code-assistant")
    # agent: temperature 0.2, max_tokens 4096; dialog: top_p 0.5, stop; call: temperature 1.1
    dialog_id = await new_dialog(
        gql, model="gpt-4-turbo", agentId=coder, topP=0.5, stop=["END"], systemPrompt="Be brief."
    )
    sent = (await send(gql, dialog_id, "Write code", temperature=1.1)).ok()["sendMessage"]
    await finished(app, sent["assistantMessage"]["id"])
    body = openai.chat_requests[-1].json
    assert body["model"] == "gpt-5.4"  # the public name's current upstream model
    assert body["temperature"] == 1.1
    assert body["top_p"] == 0.5
    assert body["stop"] == ["END"]
    assert body["max_tokens"] == 4096
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Write code"},
    ]


async def test_invalid_call_params_are_refused_before_anything_is_saved(
    gql: GraphQLClient, app: Any, openai: OpenAIFake
) -> None:
    dialog_id = await new_dialog(gql, model="claude-3-opus")
    result = await send(gql, dialog_id, "hi", temperature=1.5)
    assert result.codes == ["VALIDATION_FAILED"]
    async with database_of(app).read() as session:
        assert (await session.scalars(select(Message))).all() == []


async def test_context_keeps_the_newest_history_that_fits(
    gql: GraphQLClient, app: Any, openai: OpenAIFake
) -> None:
    # A 16,385-token context (gpt-3.5-turbo's, before it named a current model); with a
    # 4,096-token answer cap, 12 turns of ~1,500 tokens do not fit: only the newest are sent.
    async with database_of(app).transaction() as session:
        narrow = update(Model).where(Model.name == "gpt-3.5-turbo").values(context_window=16_385)
        await session.execute(narrow)
    dialog_id = await new_dialog(gql, model="gpt-3.5-turbo", maxTokens=4096)
    await gql(
        'mutation { topUpBalance(input: {userId: 7, amount: 1000000, reason: "t"}) { replayed } }',
        user=900,
        staff=True,
    )
    for i in range(6):
        openai.script(Scenario(text=f"answer {i} " + "word " * 1_500))
        sent = (await send(gql, dialog_id, f"question {i} " + "word " * 1_500)).ok()
        await finished(app, sent["sendMessage"]["assistantMessage"]["id"])
    openai.script(Scenario(text=REPLY))
    sent = (await send(gql, dialog_id, "And the newest question?")).ok()["sendMessage"]
    await finished(app, sent["assistantMessage"]["id"])
    messages = openai.chat_requests[-1].json["messages"]
    assert messages[-1] == {"role": "user", "content": "And the newest question?"}
    contents = [m["content"].split(" ")[:2] for m in messages[:-1]]
    # The oldest turns were dropped, the newest kept, in order, starting with a question.
    assert contents[0][0] == "question"
    assert contents[-1] == ["answer", "5"]
    assert ["question", "0"] not in contents
    assert len(messages) < 13


async def test_idempotent_send_returns_the_same_messages_and_charges_once(
    gql: GraphQLClient, app: Any, openai: OpenAIFake
) -> None:
    dialog_id = await new_dialog(gql, model="gpt-4-turbo")
    first = (await send(gql, dialog_id, "hello", idempotencyKey="k-1")).ok()["sendMessage"]
    await finished(app, first["assistantMessage"]["id"])
    again = (await send(gql, dialog_id, "hello", idempotencyKey="k-1")).ok()["sendMessage"]
    assert again["replayed"] is True
    assert again["userMessage"]["id"] == first["userMessage"]["id"]
    assert again["assistantMessage"]["id"] == first["assistantMessage"]["id"]
    assert len(openai.chat_requests) == 1
    state = await assert_exact(app)
    assert len(state.usage_rows) == 1
    other = await new_dialog(gql)
    assert (await send(gql, other, "hello", idempotencyKey="k-1")).codes == ["CONFLICT"]


async def test_concurrent_sends_with_one_key_make_one_answer(
    gql: GraphQLClient, app: Any, openai: OpenAIFake, backend: str
) -> None:
    dialog_id = await new_dialog(gql, model="gpt-4-turbo")
    results = await asyncio.gather(
        *(send(gql, dialog_id, "hello", idempotencyKey="same") for _ in range(5))
    )
    ok = [r.ok()["sendMessage"] for r in results if not r.errors]
    assert len({r["assistantMessage"]["id"] for r in ok}) == 1
    # A loser of the insert race is told to retry rather than charged twice.
    assert all(r.codes in ([], ["CONFLICT"]) for r in results)
    await finished(app, ok[0]["assistantMessage"]["id"])
    assert len((await assert_exact(app)).usage_rows) == 1


async def test_regenerate_makes_a_sibling_and_the_newest_is_the_context(
    gql: GraphQLClient, app: Any, openai: OpenAIFake
) -> None:
    dialog_id = await new_dialog(gql, model="gpt-4-turbo")
    openai.script(Scenario(text="First answer."))
    sent = (await send(gql, dialog_id, "Question one")).ok()["sendMessage"]
    first_answer = sent["assistantMessage"]["id"]
    await finished(app, first_answer)
    openai.script(Scenario(text="Second answer."))
    regenerated = await gql(
        "mutation($id: UUID!) { regenerate(input: {messageId: $id}) "
        "{ userMessage { id } assistantMessage { id parentId status } } }",
        {"id": first_answer},
        user=7,
    )
    payload = regenerated.ok()["regenerate"]
    assert payload["userMessage"]["id"] == sent["userMessage"]["id"]
    assert payload["assistantMessage"]["parentId"] == sent["userMessage"]["id"]
    second = await finished(app, payload["assistantMessage"]["id"])
    assert second.content == "Second answer."
    # The regenerated request did not include the old answer.
    assert openai.chat_requests[-1].json["messages"] == [
        {"role": "user", "content": "Question one"}
    ]
    openai.script(Scenario(text=REPLY))
    follow = (await send(gql, dialog_id, "Question two")).ok()["sendMessage"]
    await finished(app, follow["assistantMessage"]["id"])
    assert openai.chat_requests[-1].json["messages"] == [
        {"role": "user", "content": "Question one"},
        {"role": "assistant", "content": "Second answer."},
        {"role": "user", "content": "Question two"},
    ]
    # The active branch holds the newest answer; the first stays its sibling. Each
    # answer was charged once.
    history = await gql(
        "query($id: UUID!) { messages(dialogId: $id) { edges { node { id content "
        "siblingIds siblingPosition } } } }",
        {"id": dialog_id},
        user=7,
    )
    nodes = [e["node"] for e in history.ok()["messages"]["edges"]]
    assert [n["content"] for n in nodes] == [
        "Question one",
        "Second answer.",
        "Question two",
        REPLY,
    ]
    assert nodes[1]["siblingIds"] == [first_answer, payload["assistantMessage"]["id"]]
    assert nodes[1]["siblingPosition"] == 2
    assert len((await assert_exact(app)).usage_rows) == 3


async def test_over_budget_keeps_the_message_and_fails_the_answer(
    gql: GraphQLClient, app: Any, openai: OpenAIFake
) -> None:
    dialog_id = await new_dialog(gql, model="gpt-4-turbo")
    await gql(
        'mutation { adjustBalance(input: {userId: 7, amount: -9990, reason: "test"}) '
        "{ replayed } }",
        user=900,
        staff=True,
    )
    result = await send(gql, dialog_id, "Please answer")
    assert result.codes == ["INSUFFICIENT_BALANCE"]
    details = result.errors[0]["extensions"]
    assert details["available"] == 10
    assert details["needed"] > 10
    assert openai.chat_requests == []
    async with database_of(app).read() as session:
        rows = (await session.scalars(select(Message).order_by(Message.created_at))).all()
    assert [(r.role, r.status, r.error_code) for r in rows] == [
        ("user", "complete", None),
        ("assistant", "failed", "INSUFFICIENT_BALANCE"),
    ]
    assert {str(r.id) for r in rows} == {details["userMessageId"], details["assistantMessageId"]}
    assert (await assert_exact(app)).balance == 10


async def test_a_lower_balance_lowers_the_output_cap(
    gql: GraphQLClient, app: Any, openai: OpenAIFake
) -> None:
    dialog_id = await new_dialog(gql, model="gpt-4-turbo")
    await gql(
        'mutation { adjustBalance(input: {userId: 7, amount: -9800, reason: "test"}) '
        "{ replayed } }",
        user=900,
        staff=True,
    )
    sent = (await send(gql, dialog_id, "Hi")).ok()["sendMessage"]
    await finished(app, sent["assistantMessage"]["id"])
    max_tokens = openai.chat_requests[-1].json["max_tokens"]
    assert 32 <= max_tokens < 200  # 200 tokens left, minus the prompt
    await assert_exact(app)


async def test_first_message_titles_the_dialog(
    gql: GraphQLClient, app: Any, openai: OpenAIFake
) -> None:
    dialog_id = await new_dialog(gql, model="gpt-4-turbo")
    long = "How do I plan a two week trip through Japan in spring with a small budget please"
    sent = (await send(gql, dialog_id, long)).ok()["sendMessage"]
    await finished(app, sent["assistantMessage"]["id"])
    title = (
        await gql("query($id: UUID!) { dialog(id: $id) { title } }", {"id": dialog_id}, user=7)
    ).ok()["dialog"]["title"]
    assert title.startswith("How do I plan a two week trip")
    assert title.endswith("…")
    assert len(title) <= 61
    named = await new_dialog(gql, title="Kept")
    sent = (await send(gql, named, "anything")).ok()["sendMessage"]
    await finished(app, sent["assistantMessage"]["id"])
    kept = await gql("query($id: UUID!) { dialog(id: $id) { title } }", {"id": named}, user=7)
    assert kept.ok()["dialog"]["title"] == "Kept"


async def test_a_disabled_model_refuses_new_messages(
    gql: GraphQLClient, app: Any, openai: OpenAIFake
) -> None:
    dialog_id = await new_dialog(gql, model="gpt-4-turbo")
    async with database_of(app).transaction() as session:
        dialog = await session.get(Dialog, uuid.UUID(dialog_id))
        assert dialog is not None
        model = await session.scalar(select(Model).where(Model.id == dialog.model_id))
        assert model is not None
        model.enabled = False
    result = await send(gql, dialog_id, "hi")
    assert result.codes == ["VALIDATION_FAILED"]
    assert result.errors[0]["extensions"]["field"] == "model"


async def test_shutdown_mid_stream_interrupts_and_settles(
    database_url: str, openai: OpenAIFake
) -> None:
    settings = chat_settings(database_url, openai)
    openai.script(Scenario(text=REPLY * 50, chunks=300, chunk_delay=0.01))
    app = create_app(settings)
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            gql = GraphQLClient(http)
            dialog_id = await new_dialog(gql, model="gpt-4-turbo")
            channel = dialog_channel(dialog_id)
            async with app.state.services.broker.subscribe(channel) as events:
                sent = (await send(gql, dialog_id, "Long please")).ok()["sendMessage"]
                async for event in events:
                    if event["type"] == "delta" and event["seq"] >= 3:
                        break
    # The lifespan has ended: grace (0.2 s) passed, the generation was interrupted.
    check = create_app(settings)
    async with LifespanManager(check):
        async with database_of(check).read() as session:
            answer = await session.get(Message, uuid.UUID(sent["assistantMessage"]["id"]))
        assert answer is not None
        assert (answer.status, answer.error_code) == ("interrupted", "INTERRUPTED")
        assert 0 < len(answer.content) < len(REPLY * 50)
        assert answer.charged_tokens == (answer.prompt_tokens or 0) + (
            answer.completion_tokens or 0
        )
        state = await assert_exact(check)
        assert state.balance == 10_000 - answer.charged_tokens


async def test_restart_recovers_orphaned_generations(database_url: str, openai: OpenAIFake) -> None:
    """A process died mid-answer: its holds are released (or settled for saved text)."""
    settings = chat_settings(database_url, openai, instance_id="worker-1")
    first = create_app(settings)
    async with LifespanManager(first):
        db = database_of(first)
        policy = MoneyPolicy.from_settings(settings)
        async with db.transaction() as session:
            dialog = await dialogs.create_dialog(
                session, 7, dialogs.DialogDraft(model="gpt-4-turbo"), max_content=1000
            )
        sent = []
        for text in ("", "Partial answer so"):
            async with db.transaction() as session:
                result = await chat.send_message(
                    session,
                    7,
                    dialog.id,
                    "question",
                    idempotency_key=None,
                    overrides=Overrides(),
                    max_content=1000,
                    policy=policy,
                    instance_id="worker-1",
                )
                await outcomes.save_partial(session, result.assistant_message.id, text)
            sent.append(result.assistant_message.id)  # never launched: the process "died"
        assert (await money(first)).held > 0
    # The same instance starts again and finds its orphans.
    again = create_app(settings)
    async with LifespanManager(again):
        async with database_of(again).read() as session:
            rows = [await session.get(Message, message_id) for message_id in sent]
        empty, partial = rows
        assert empty is not None
        assert partial is not None
        assert (empty.status, empty.charged_tokens) == ("interrupted", 0)
        assert (partial.status, partial.content) == ("interrupted", "Partial answer so")
        assert partial.charged_tokens is not None
        assert partial.charged_tokens > 0
        state = await assert_exact(again)
        assert state.balance == 10_000 - partial.charged_tokens
        assert sorted(state.reservation_states) == ["released", "settled"]


@pytest.fixture(params=["in-process", "redis"])
def broker_settings(
    request: pytest.FixtureRequest, database_url: str, openai: OpenAIFake
) -> Settings:
    if request.param == "redis":
        return chat_settings(
            database_url, openai, redis_url=request.getfixturevalue("redis_available")
        )
    return chat_settings(database_url, openai)


async def test_late_joiner_gets_the_text_so_far_then_live_deltas(
    broker_settings: Settings, openai: OpenAIFake
) -> None:
    settings = broker_settings
    openai.script(Scenario(text="".join(f"w{i} " for i in range(60)), chunks=60, chunk_delay=0.02))
    auth = {"Authorization": f"Bearer {token(7)}"}
    async with live_server(settings) as server, graphql_socket(server, auth) as early:
        dialog_id = (
            await early.execute('mutation { createDialog(input: {model: "gpt-4-turbo"}) { id } }')
        )["data"]["createDialog"]["id"]
        early_events = early.events(await early.subscribe(EVENTS, {"dialogId": dialog_id}))
        await _send_http(server.base_url, dialog_id)
        early_seen = [await anext(early_events) for _ in range(10)]  # mid-stream now
        async with graphql_socket(server, auth) as late:
            late_events = late.events(await late.subscribe(EVENTS, {"dialogId": dialog_id}))
            late_seen = await _until_terminal(late_events)
        early_seen += await _until_terminal(early_events)
    early_text = _text(early_seen)
    late_text = _text(late_seen)
    final = late_seen[-1]["data"]["messageEvents"]
    assert final["__typename"] == "MessageCompleted"
    assert early_text == late_text == final["message"]["content"]
    late_seqs = [
        e["data"]["messageEvents"]["seq"]
        for e in late_seen
        if e["data"]["messageEvents"]["__typename"] == "MessageDelta"
    ]
    # First the text so far (one delta carrying seq N), then N+1, N+2, … with no gap.
    assert late_seqs[0] > 1
    assert late_seqs == list(range(late_seqs[0], late_seqs[0] + len(late_seqs)))


async def test_a_disconnected_subscriber_finds_the_finished_answer(
    broker_settings: Settings, openai: OpenAIFake
) -> None:
    settings = broker_settings
    openai.script(Scenario(text=REPLY * 5, chunks=30, chunk_delay=0.01))
    auth = {"Authorization": f"Bearer {token(7)}"}
    async with live_server(settings) as server:
        async with graphql_socket(server, auth) as socket:
            dialog_id = (
                await socket.execute(
                    'mutation { createDialog(input: {model: "gpt-4-turbo"}) { id } }'
                )
            )["data"]["createDialog"]["id"]
            events = socket.events(await socket.subscribe(EVENTS, {"dialogId": dialog_id}))
            sent = await _send_http(server.base_url, dialog_id)
            await anext(events)
        # The socket is gone; the generation belongs to the server and finishes.
        app = server.app
        answer = await finished(app, sent["assistantMessage"]["id"])
        assert (answer.status, answer.content) == ("complete", REPLY * 5)
        await assert_exact(app)


async def _send_http(base_url: str, dialog_id: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=base_url) as client:
        response = await client.post(
            "/graphql",
            json={
                "query": "mutation($input: SendMessageInput!) { sendMessage(input: $input) "
                "{ assistantMessage { id } } }",
                "variables": {"input": {"dialogId": dialog_id, "content": "Count for me"}},
            },
            headers={"Authorization": f"Bearer {token(7)}"},
        )
    body = response.json()
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["sendMessage"]
    return result


async def _until_terminal(events: AsyncIterator[dict[str, Any]]) -> list[dict[str, Any]]:
    seen = []
    async for payload in events:
        seen.append(payload)
        if payload["data"]["messageEvents"]["__typename"] in ("MessageCompleted", "MessageFailed"):
            return seen
    raise AssertionError("the subscription ended without a terminal event")


def _text(events: list[dict[str, Any]]) -> str:
    return "".join(
        e["data"]["messageEvents"]["text"]
        for e in events
        if e["data"]["messageEvents"]["__typename"] == "MessageDelta"
    )


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_instances_share_generations_through_redis(
    database_url: str, openai: OpenAIFake, redis_available: str
) -> None:
    """A subscriber on instance B follows (and cancels) a generation running on A."""
    openai.script(
        Scenario(text="".join(f"w{i} " for i in range(80)), chunks=80, chunk_delay=0.02),
        Scenario(text="".join(f"x{i} " for i in range(300)), chunks=300, chunk_delay=0.02),
    )
    settings_a = chat_settings(database_url, openai, redis_url=redis_available, instance_id="a")
    settings_b = chat_settings(database_url, openai, redis_url=redis_available, instance_id="b")
    auth = {"Authorization": f"Bearer {token(7)}"}
    async with live_server(settings_a) as a, live_server(settings_b) as b:
        async with graphql_socket(b, auth) as on_b:
            dialog_id = (
                await on_b.execute(
                    'mutation { createDialog(input: {model: "gpt-4-turbo"}) { id } }'
                )
            )["data"]["createDialog"]["id"]
            sent = await _send_http(a.base_url, dialog_id)  # runs on A
            events = on_b.events(await on_b.subscribe(EVENTS, {"dialogId": dialog_id}))
            seen = await _until_terminal(events)
            final = seen[-1]["data"]["messageEvents"]
            assert final["__typename"] == "MessageCompleted"
            assert final["message"]["id"] == sent["assistantMessage"]["id"]
            assert _text(seen) == final["message"]["content"]

            second = await _send_http(a.base_url, dialog_id)
            started = await anext(events)
            assert started["data"]["messageEvents"]["__typename"] == "MessageStarted"
            async with httpx.AsyncClient(base_url=b.base_url, headers=auth) as http:
                response = await http.post(
                    "/graphql",
                    json={
                        "query": "mutation($id: UUID!) { cancelGeneration(input: "
                        "{messageId: $id}) { status content } }",
                        "variables": {"id": second["assistantMessage"]["id"]},
                    },
                )
            cancelled = response.json()["data"]["cancelGeneration"]
            assert cancelled["status"] == "CANCELLED"
            terminal = (await _until_terminal(events))[-1]["data"]["messageEvents"]
            assert terminal["__typename"] == "MessageFailed"
            assert terminal["code"] == "CANCELLED"
            assert terminal["final"]["content"] == cancelled["content"]
        await assert_exact(a.app)


async def test_sending_while_the_previous_answer_settles_never_fails(
    gql: GraphQLClient, app: Any, openai: OpenAIFake
) -> None:
    """Regression: a send overlapping the previous answer's settlement once deadlocked
    (dialog row, then balance, against balance, then dialog row)."""
    openai.default = Scenario(text="ok", chunks=1)
    dialog_id = await new_dialog(gql, model="gpt-4-turbo", maxTokens=64)
    sent = []
    for i in range(15):
        result = await send(gql, dialog_id, f"message {i}")
        assert result.errors == [], result.errors
        sent.append(result.ok()["sendMessage"]["assistantMessage"]["id"])
    answers = [await finished(app, message_id) for message_id in sent]
    assert {a.status for a in answers} == {"complete"}
    state = await assert_exact(app)
    assert len(state.usage_rows) == 15


async def test_deltas_are_coalesced_but_the_first_is_not_delayed(
    gql: GraphQLClient, app: Any, openai: OpenAIFake
) -> None:
    scenario = Scenario(text="".join(f"t{i} " for i in range(120)), chunks=120, chunk_delay=0.002)
    openai.script(scenario)
    dialog_id = await new_dialog(gql, model="gpt-4-turbo")
    deltas: list[dict[str, Any]] = []
    async with app.state.services.broker.subscribe(dialog_channel(dialog_id)) as events:
        sent = (await send(gql, dialog_id, "Count")).ok()["sendMessage"]
        async for event in events:
            if event["type"] == "delta":
                deltas.append(event)
            if event["type"] in ("completed", "failed"):
                break
    answer = await finished(app, sent["assistantMessage"]["id"])
    assert answer.content == scenario.text
    assert "".join(d["text"] for d in deltas) == scenario.text
    assert deltas[0]["text"] == scenario.pieces()[0]  # sent alone, at once
    assert [d["seq"] for d in deltas] == list(range(1, len(deltas) + 1))
    assert len(deltas) < len(scenario.pieces()) / 2  # 50 ms windows over ~0.3 s of tokens


async def test_a_subscription_on_a_dialog_deleted_mid_answer_ends_not_found(
    settings: Settings, openai: OpenAIFake
) -> None:
    openai.script(Scenario(text="".join(f"w{i} " for i in range(40)), chunks=40, chunk_delay=0.02))
    auth = {"Authorization": f"Bearer {token(7)}"}
    async with live_server(settings) as server, graphql_socket(server, auth) as socket:
        dialog_id = (
            await socket.execute('mutation { createDialog(input: {model: "gpt-4-turbo"}) { id } }')
        )["data"]["createDialog"]["id"]
        events = socket.events(await socket.subscribe(EVENTS, {"dialogId": dialog_id}))
        await _send_http(server.base_url, dialog_id)
        assert (await anext(events))["data"]["messageEvents"]["__typename"] == "MessageStarted"
        async with httpx.AsyncClient(base_url=server.base_url) as client:
            deleted = await client.post(
                "/graphql",
                json={
                    "query": f'mutation {{ deleteDialog(input: {{id: "{dialog_id}"}}) {{ id }} }}'
                },
                headers=auth,
            )
        assert "errors" not in deleted.json(), deleted.json()
        rest = [payload async for payload in events]
    kinds = [(p.get("data") or {}).get("messageEvents", {}).get("__typename") for p in rest]
    assert "MessageCompleted" not in kinds  # the answer (and the balance) are not sent
    codes = [e.get("extensions", {}).get("code") for p in rest for e in p.get("errors") or []]
    assert codes == ["NOT_FOUND"]
