"""Hostile documents and NUL characters: refused at the boundary, cleanly and cheaply.

The operation limits (``llm_gateway.schema.guards.operation_limits``) refuse a document
whose expansion explodes before graphql-core's rules ever see it. The CPU bound is asserted
by counting work, never by timing: the pass reports its ``steps`` (nodes visited and
spreads combined), which must not exceed the document's token count, and a spy counts graphql-core's
``validate`` calls. A NUL character (PostgreSQL stores none in text) is a VALIDATION_FAILED
on both databases, in GraphQL and in the admin's forms, and nothing is stored.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import graphql
import pytest
import strawberry.schema.schema as strawberry_schema
from graphql import Lexer, Source, TokenKind, get_introspection_query, parse
from sqlalchemy import func, select

from llm_gateway.db.models import AuditLog, Dialog, Message
from llm_gateway.errors import Unauthenticated
from llm_gateway.schema.build import GatewaySchema, build_schema
from llm_gateway.schema.guards import document_cache as documents
from llm_gateway.schema.guards import operation_limits as limits
from llm_gateway.settings import Settings
from tests.admin_support import AdminClient, flashes
from tests.chat.test_flow import EVENTS
from tests.chat_support import SEND, finished, new_dialog, send
from tests.conftest import make_settings
from tests.factories import database_of
from tests.live import graphql_socket, live_server
from tests.support import GraphQLClient, token

ANY_DATABASE = "sqlite+aiosqlite:///:memory:"  # building a schema opens no connection
DEFAULTS = make_settings(ANY_DATABASE)
BODY_LIMIT = 1_048_576


class Anonymous:
    """A request without a token: any field it reaches is refused as UNAUTHENTICATED."""

    @property
    def principal(self) -> None:
        raise Unauthenticated("No access token.")


@dataclass
class Work:
    """What the limits pass and graphql-core's validation did for the operations run."""

    analyses: list[limits.Analysis] = field(default_factory=list)
    validations: int = 0

    @property
    def steps(self) -> int:
        return sum(analysis.steps for analysis in self.analyses)


@pytest.fixture
def work(monkeypatch: pytest.MonkeyPatch) -> Work:
    """Spies on the pass and on ``validate`` (strawberry's and the document cache's)."""
    seen = Work()
    analyse, validate = limits.analyse, graphql.validate

    def counted_analyse(document: Any) -> limits.Analysis:
        seen.analyses.append(analyse(document))
        return seen.analyses[-1]

    def counted_validate(*args: Any, **kwargs: Any) -> Any:
        seen.validations += 1
        return validate(*args, **kwargs)

    monkeypatch.setattr(limits, "analyse", counted_analyse)
    monkeypatch.setattr(strawberry_schema, "validate", counted_validate)
    monkeypatch.setattr(documents, "validate", counted_validate)
    return seen


def tokens(document: str) -> int:
    lexer, count = Lexer(Source(document)), 0
    while lexer.advance().kind is not TokenKind.EOF:
        count += 1
    return count


async def outcome(schema: GatewaySchema, query: str, **kwargs: Any) -> list[tuple[str, Any]]:
    result = await schema.execute(query, context_value=Anonymous(), **kwargs)
    return [(e.message, (e.extensions or {}).get("code")) for e in result.errors or []]


def fan_out(levels: int, field_: str = "userId") -> str:
    """Each fragment spreads the next one twice: 2**levels copies of the last one."""
    fragments = " ".join(
        f"fragment F{i} on Me {{ {field_} ...F{i + 1} ...F{i + 1} }}" for i in range(levels)
    )
    return f"query {{ me {{ ...F0 }} }} {fragments} fragment F{levels} on Me {{ userId }}"


def nested_fragments(levels: int) -> str:
    """Each fragment nests the next one a field deeper: depth ``levels + 1``."""
    fragments = " ".join(
        f"fragment N{i} on Model {{ fallbackModel {{ ...N{i + 1} }} }}" for i in range(levels)
    )
    return f"{{ models {{ ...N0 }} }} {fragments} fragment N{levels} on Model {{ name }}"


def flat(fields: int) -> str:
    return "{ me { " + "userId " * fields + "} }"


HOSTILE = {
    "fan-out 21": (
        fan_out(21),
        "'anonymous' exceeds maximum operation cost of 5,000: "
        "it selects 4,194,304 fields once its fragments are expanded",
    ),
    "fan-out 30": (fan_out(30), "it selects 2,147,483,648 fields"),
    "alias fan-out": (fan_out(25, "a: userId"), "33554431 aliases found. Allowed: 30"),
    "nesting through fragments": (nested_fragments(150), "maximum operation depth of 12"),
    "nesting": (
        "{ models " + "{ fallbackModel " * 150 + "{ name }" + " }" * 151,
        "'anonymous' exceeds maximum operation depth of 12",
    ),
    "cycle": (
        "{ me { ...A } } fragment A on Me { ...B } fragment B on Me { userId ...A }",
        "Cannot spread fragment 'A' within itself.",
    ),
}


@pytest.mark.parametrize("name", HOSTILE)
async def test_an_exploding_document_is_refused_before_graphql_core_validates_it(
    name: str, work: Work
) -> None:
    document, says = HOSTILE[name]
    errors = await outcome(build_schema(DEFAULTS), document)

    assert any(says in message for message, _ in errors), errors
    assert {code for _, code in errors} == {"GRAPHQL_VALIDATION_FAILED"}
    assert work.validations == 0
    assert 0 < work.steps <= tokens(document)


async def test_the_work_follows_the_document_not_its_expansion(work: Work) -> None:
    schema = build_schema(DEFAULTS)
    for levels in (10, 20, 40, 80, 160):
        await outcome(schema, fan_out(levels))
    steps = [analysis.steps for analysis in work.analyses]
    # Eleven more tokens a level, five more steps; expanded, each level doubles the work.
    assert [later - earlier for earlier, later in itertools.pairwise(steps)] == [50, 100, 200, 400]


async def test_a_flat_document_the_size_of_a_request_is_refused_cheaply(work: Work) -> None:
    largest = flat((BODY_LIMIT - 100) // len("userId "))
    [(message, code)] = await outcome(build_schema(DEFAULTS), largest)
    assert (code, message) == (
        "GRAPHQL_PARSE_FAILED",
        f"Syntax Error: Document contains more than {DEFAULTS.graphql_max_tokens} tokens. "
        "Parsing aborted.",
    )
    assert (work.analyses, work.validations) == ([], 0)

    # With the token limit lifted, the cost limit refuses it: one step per field.
    lifted = build_schema(make_settings(ANY_DATABASE, graphql_max_tokens=100_000))
    [(message, code)] = await outcome(lifted, flat(20_000))
    assert "it selects 20,001 fields" in message
    assert code == "GRAPHQL_VALIDATION_FAILED"
    assert work.steps == 20_001
    assert work.validations == 0


async def test_repeated_fields_stop_at_graphql_cores_comparison_budget(work: Work) -> None:
    # OverlappingFieldsCanBeMergedRule compares same-named fields pairwise: quadratic, so
    # bounded by a budget (documents.OVERLAP_BUDGET) the documents in use never come near.
    # 300 same-named fields: 44,850 comparisons, within graphql-core's default budget.
    repeated = flat(300)
    assert limits.check(parse(repeated), limits.Limits.of(DEFAULTS)) == []
    assert await outcome(build_schema(DEFAULTS), repeated) == [
        ("Validation aborted.", "GRAPHQL_VALIDATION_FAILED")
    ]
    assert work.validations == 1


async def test_many_mistakes_stop_at_a_few_errors(work: Work) -> None:
    # Each error scans the document up to its position: 100 errors on a long document
    # were quadratic. Ten are reported, then graphql-core's "error limit reached".
    mistakes = " ".join(f"query Q{i}($v: Int) {{ me {{ userId }} }}" for i in range(60))
    errors = await outcome(build_schema(DEFAULTS), mistakes, operation_name="Q0")
    assert len(errors) == documents.MAX_VALIDATION_ERRORS + 1
    assert "error limit reached" in errors[-1][0]


async def test_a_document_past_its_character_limit_is_refused_before_parsing(
    gql: GraphQLClient, settings: Settings, work: Work
) -> None:
    limit = settings.graphql_max_document_chars
    query = "{ me { userId } } #"
    at_limit = await gql(query + "x" * (limit - len(query)), user=7)
    assert at_limit.ok() == {"me": {"userId": 7}}
    over = await gql(query + "x" * (limit - len(query) + 1), user=7)
    assert over.status == 413
    assert over.codes == ["PAYLOAD_TOO_LARGE"]
    assert "send long values as variables" in over.errors[0]["message"]
    assert len(work.analyses) == 1  # the refused one was never parsed


async def test_an_unknown_fragment_is_reported_by_graphql_core(work: Work) -> None:
    assert await outcome(build_schema(DEFAULTS), "{ me { ...Nope } }") == [
        ("Unknown fragment 'Nope'.", "GRAPHQL_VALIDATION_FAILED")
    ]
    assert work.validations == 1


def test_the_documents_in_use_pass_the_limits() -> None:
    everyday = limits.Limits.of(DEFAULTS)
    for document in (SEND, EVENTS, get_introspection_query(descriptions=True)):
        assert limits.check(parse(document), everyday) == []


@pytest.mark.parametrize(
    ("document", "depth"),
    [
        ("{ models { name } }", 1),
        ("{ __typename models { fallbackModel { __typename } } }", 2),
        ("{ __schema { types { fields { type { name } } } } }", 0),
        ("{ models { ...M } } fragment M on Model { fallbackModel { ... on Model { name } } }", 2),
        ("query A { me { userId } } query B { models { fallbackModel { name } } }", 2),
    ],
)
def test_depth_is_counted_as_strawberrys_limiter_counted_it(document: str, depth: int) -> None:
    measures = [measure.depth for _, measure in limits.analyse(parse(document)).operations]
    assert max(measures) == depth


async def test_the_limits_apply_over_http(gql: GraphQLClient) -> None:
    result = await gql(fan_out(21), user=None)
    assert result.status < 500
    assert result.data is None
    assert result.codes == ["GRAPHQL_VALIDATION_FAILED"]
    assert "maximum operation cost" in result.errors[0]["message"]


# --- NUL characters ---------------------------------------------------------------------

CREATE = "mutation($input: CreateDialogInput!) { createDialog(input: $input) { id } }"
IMPORT = (
    "mutation($input: ImportDialogsInput!) { importDialogs(input: $input) { dialogsImported } }"
)
EXPORT = {"version": "2.0", "dialogs": [{"title": "Hi", "messages": []}]}
NUL_INPUTS: dict[str, tuple[str, dict[str, Any]]] = {
    "variable": (CREATE, {"input": {"title": "a\x00b"}}),
    "inline literal": ('mutation { createDialog(input: {title: "a\\u0000b"}) { id } }', {}),
    "block string": ('mutation { createDialog(input: {title: """a\x00b"""}) { id } }', {}),
    "nested input": (CREATE, {"input": {"title": "ok", "systemPrompt": "Be\x00 brief"}}),
    "stop variable": (CREATE, {"input": {"stop": ["END", "\x00"]}}),
    "stop literal": ('mutation { createDialog(input: {stop: ["\\u{0}"]}) { id } }', {}),
    "input key": (CREATE, {"input": {"title": "ok", "ti\x00tle": "x"}}),
    "JSON scalar": (IMPORT, {"input": {"data": {**EXPORT, "dialogs": [{"title": "\x00"}]}}}),
    "JSON key": (IMPORT, {"input": {"data": {**EXPORT, "\x00": 1}}}),
    "JSON literal": (
        'mutation { importDialogs(input: {data: {version: "2.0", dialogs: [{title: "\\u0000"}]}})'
        " { dialogsImported } }",
        {},
    ),
}


async def count(app: Any, model: type[Any]) -> int:
    async with database_of(app).read() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


def assert_nul_refused(body: dict[str, Any]) -> None:
    assert body.get("data") is None
    [error] = body["errors"]
    assert error["extensions"]["code"] == "VALIDATION_FAILED"
    assert "contains a NUL character" in error["message"]


@pytest.mark.parametrize("where", NUL_INPUTS)
async def test_a_nul_in_any_string_input_is_refused_and_nothing_is_stored(
    where: str, gql: GraphQLClient, app: Any
) -> None:
    document, variables = NUL_INPUTS[where]
    result = await gql(document, variables)
    assert result.status < 500
    assert_nul_refused(result.body)
    assert await count(app, Dialog) == 0


async def test_a_message_with_a_nul_is_not_sent(gql: GraphQLClient, app: Any) -> None:
    dialog_id = await new_dialog(gql)
    refused = await send(gql, dialog_id, "Hello\x00")
    assert_nul_refused(refused.body)
    searched = await gql(
        "query($s: String) { dialogs(search: $s) { edges { cursor } } }", {"s": "\x00"}
    )
    assert_nul_refused(searched.body)
    assert await count(app, Message) == 0

    sent = (await send(gql, dialog_id, "Hello")).ok()["sendMessage"]
    assert sent["userMessage"]["content"] == "Hello"
    await finished(app, sent["assistantMessage"]["id"])


async def test_the_checks_apply_over_the_websocket(settings: Settings) -> None:
    subscription = (
        "subscription($d: UUID!) { messageEvents(dialogId: $d) { ...E0 } } "
        + " ".join(
            f"fragment E{i} on MessageEvent {{ __typename ...E{i + 1} ...E{i + 1} }}"
            for i in range(21)
        )
        + " fragment E21 on MessageEvent { __typename }"
    )
    auth = {"Authorization": f"Bearer {token(7)}"}
    async with live_server(settings) as server, graphql_socket(server, auth) as socket:
        bomb = await socket.subscribe(subscription, {"d": "6d0f1f0e-0000-4000-8000-000000000000"})
        refused = await socket.receive()
        assert (refused["id"], refused["type"]) == (bomb, "error")
        [error] = refused["payload"]
        assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
        assert "maximum operation cost" in error["message"]

        too_long = await socket.subscribe(
            "{ me { userId } } #" + "x" * settings.graphql_max_document_chars
        )
        refused = await socket.receive()
        assert (refused["id"], refused["type"]) == (too_long, "error")
        assert [e["extensions"]["code"] for e in refused["payload"]] == ["PAYLOAD_TOO_LARGE"]

        nul = await socket.subscribe(CREATE, {"input": {"title": "\x00"}})
        refused = await socket.receive()
        assert (refused["id"], refused["type"]) == (nul, "error")
        assert_nul_refused({"errors": refused["payload"]})
        assert (await socket.execute("{ me { userId } }"))["data"] == {"me": {"userId": 7}}


# --- the admin's forms ----------------------------------------------------------------------


async def test_admin_forms_refuse_a_nul_with_their_usual_message(
    staff_admin: AdminClient, admin_app: Any
) -> None:
    audited = await count(admin_app, AuditLog)
    agent = {"name": "Reviewer", "system_prompt": "Translate.\x00", "model": "mock"}
    response = await staff_admin.submit("/admin/agents/new", "/admin/agents/new", **agent)
    assert response.status_code == 400
    assert "System prompt must not contain a NUL character." in flashes(response.text)
    assert 'value="Reviewer"' in response.text  # what was typed stays

    model = {"name": "m\x00", "provider": "mock", "upstream_model": "mock"}
    response = await staff_admin.submit("/admin/models/new", "/admin/models/new", **model)
    assert response.status_code == 400
    assert "Name must not contain a NUL character." in flashes(response.text)

    gql = GraphQLClient(staff_admin.http)
    opened = (await gql("{ me { balance { balance } } }", user=7)).ok()["me"]["balance"]
    response = await staff_admin.submit(
        "/admin/users/7", "/admin/users/7/topup", amount="5", reason="\x00", back="/admin/users/7"
    )
    assert response.headers["location"] == "/admin/users/7"
    page = await staff_admin.get("/admin/users/7")
    assert "Reason must not contain a NUL character." in flashes(page.text)
    assert (await gql("{ me { balance { balance } } }", user=7)).ok()["me"]["balance"] == opened
    assert await count(admin_app, AuditLog) == audited  # nothing was written


async def test_admin_filters_and_paths_with_a_nul_are_messages_not_errors(
    staff_admin: AdminClient,
) -> None:
    audit = await staff_admin.get("/admin/audit", action="x\x00")
    assert audit.status_code == 400
    assert "Action must not contain a NUL character." in flashes(audit.text)
    dialogs = await staff_admin.get("/admin/dialogs", model="\x00")
    assert dialogs.status_code == 400
    assert "Model must not contain a NUL character." in flashes(dialogs.text)
    missing = await staff_admin.get("/admin/models/a%00b/edit")
    assert missing.status_code == 404
    assert "does not exist" in missing.text
