"""The schema as a contract: the committed SDL, permissions on every root field, the
operation limits, and errors that carry a stable code and never leak internals."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator, Iterator
from pathlib import Path

import graphql
import pytest
import strawberry
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool
from strawberry.extensions import SchemaExtension
from strawberry.permission import BasePermission, PermissionExtension

from llm_gateway.schema.build import GatewaySchema, build_schema, schema
from llm_gateway.schema.extensions import ShapeErrors
from llm_gateway.schema.guards import operation_limits as limits
from llm_gateway.schema.permissions import IsAuthenticated
from llm_gateway.settings import Settings
from tests.conftest import make_settings
from tests.support import GraphQLClient, Result, token

SDL_PATH = Path(__file__).resolve().parents[2] / "schema.graphql"
ROOT_TYPES = ("Query", "Mutation", "Subscription")
ANY_DATABASE = "sqlite+aiosqlite:///:memory:"  # building a schema opens no connection


# --- the committed SDL ---------------------------------------------------------------


def test_committed_schema_matches_the_code() -> None:
    committed = SDL_PATH.read_text(encoding="utf-8")
    assert committed == schema.as_str() + "\n", (
        "schema.graphql differs from the schema the code builds: "
        "run `.venv/bin/llm-gateway export-schema` and commit the result"
    )


def test_settings_do_not_change_the_schema() -> None:
    """The app serves build_schema(settings); the export is the same contract."""
    served = build_schema(make_settings(ANY_DATABASE, debug=True, graphql_max_depth=3))
    assert served.as_str() == schema.as_str()


# --- permissions: a walk over the root types ------------------------------------------


def unprotected_root_fields(target: strawberry.Schema) -> list[str]:
    """``Type.field`` for every root field without a permission class that is enforced.

    The field names come from the SDL too, so a root field added some other way than a
    strawberry field cannot slip past the walk.
    """
    missing: list[str] = []
    sdl = graphql.build_schema(target.as_str())
    for type_name in ROOT_TYPES:
        exposed = sdl.get_type(type_name)
        if exposed is None:
            continue
        assert isinstance(exposed, graphql.GraphQLObjectType)
        definition = target.get_type_by_name(type_name)
        assert isinstance(definition, strawberry.types.base.StrawberryObjectDefinition)
        walked: set[str] = set()
        for field in definition.fields:
            name = target.config.name_converter.get_graphql_name(field)
            walked.add(name)
            classes = list(field.permission_classes)
            enforced = any(isinstance(e, PermissionExtension) for e in field.extensions)
            if (
                not classes
                or not enforced
                or not all(isinstance(c, type) and issubclass(c, BasePermission) for c in classes)
            ):
                missing.append(f"{type_name}.{name}")
        missing.extend(f"{type_name}.{name}" for name in set(exposed.fields) - walked)
    return sorted(missing)


def test_every_root_field_declares_permissions() -> None:
    sdl = graphql.build_schema(schema.as_str())
    assert sdl.query_type is not None
    assert sdl.mutation_type is not None
    # The walk has something to walk: the contract's root fields are there.
    assert {"me", "models", "model", "agents", "dialogs", "dialog"} <= set(sdl.query_type.fields)
    assert {"createDialog", "updateDialog", "deleteDialog"} <= set(sdl.mutation_type.fields)
    assert unprotected_root_fields(schema) == []


def one() -> int:
    return 1


async def ticks() -> AsyncGenerator[int, None]:  # pragma: no cover - never run
    yield 1


def test_the_permission_walk_catches_an_unprotected_field() -> None:
    @strawberry.type
    class Query:
        guarded: int = strawberry.field(resolver=one, permission_classes=[IsAuthenticated])
        forgotten: int = strawberry.field(resolver=one)

    @strawberry.type
    class Subscription:
        ticks: AsyncGenerator[int, None] = strawberry.subscription(resolver=ticks)

    toy = strawberry.Schema(query=Query, subscription=Subscription)
    assert unprotected_root_fields(toy) == ["Query.forgotten", "Subscription.ticks"]


# --- limits ---------------------------------------------------------------------------


def nested_models_query(depth: int) -> str:
    """``models { fallbackModel { … { name } } }`` with ``depth`` levels of fields."""
    inner = "name"
    for _ in range(depth - 1):
        inner = f"fallbackModel {{ {inner} }}"
    return f"{{ models {{ {inner} }} }}"


def assert_rejected(result: Result, code: str, says: str) -> None:
    """Refused as the client's mistake: one coded error, nothing executed, no 5xx."""
    assert result.status < 500
    assert result.data is None
    assert result.codes == [code]
    assert says in result.errors[0]["message"]


async def test_depth_limit(gql: GraphQLClient, settings: Settings) -> None:
    at_limit = await gql(nested_models_query(settings.graphql_max_depth))
    assert at_limit.ok()["models"]  # the deepest allowed query still works

    too_deep = await gql(nested_models_query(settings.graphql_max_depth + 1))
    assert_rejected(too_deep, "GRAPHQL_VALIDATION_FAILED", "depth")


async def test_alias_limit(gql: GraphQLClient, settings: Settings) -> None:
    def aliased(count: int) -> str:
        return "{ " + " ".join(f"a{i}: models {{ name }}" for i in range(count)) + " }"

    at_limit = await gql(aliased(settings.graphql_max_aliases))
    assert len(at_limit.ok()) == settings.graphql_max_aliases

    too_many = await gql(aliased(settings.graphql_max_aliases + 1))
    assert_rejected(too_many, "GRAPHQL_VALIDATION_FAILED", "aliases")


async def test_token_limit(gql: GraphQLClient, settings: Settings) -> None:
    async def run(operations: int) -> Result:
        # Five tokens per operation; distinct operations keep validation cheap.
        document = " ".join(f"query Q{i} {{ __typename }}" for i in range(operations))
        response = await gql.http.post(
            "/graphql",
            json={"query": document, "operationName": "Q0"},
            headers={"Authorization": f"Bearer {token(1)}"},
        )
        return Result(response.status_code, response.json())

    assert settings.graphql_max_tokens % 5 == 0
    at_limit = await run(settings.graphql_max_tokens // 5)
    assert at_limit.ok() == {"__typename": "Query"}

    too_long = await run(settings.graphql_max_tokens // 5 + 1)
    assert_rejected(too_long, "GRAPHQL_PARSE_FAILED", "tokens")


async def test_deeply_nested_document_is_refused_by_the_parser(gql: GraphQLClient) -> None:
    levels = 1_000  # under the token limit, far over the depth limit
    result = await gql("{ a " * levels + "}" * levels)
    assert_rejected(result, "GRAPHQL_PARSE_FAILED", "nested too deeply")


# --- errors the client caused -----------------------------------------------------------


async def test_syntax_error_is_a_parse_failure(gql: GraphQLClient) -> None:
    result = await gql("{ models { name }")
    assert result.status < 500
    assert result.data is None
    assert result.codes == ["GRAPHQL_PARSE_FAILED"]
    assert result.errors[0]["message"].startswith("Syntax Error")


async def test_unknown_field_fails_validation_without_suggestions(gql: GraphQLClient) -> None:
    result = await gql("{ modles { name } }")
    assert result.status < 500
    assert result.data is None
    assert result.codes == ["GRAPHQL_VALIDATION_FAILED"]
    message = result.errors[0]["message"]
    assert "modles" in message
    assert "Did you mean" not in message


async def test_debug_mode_suggests_field_names() -> None:
    """The flip side of the test above: suggestions exist, DEBUG off hides them."""
    debug_schema = build_schema(make_settings(ANY_DATABASE, debug=True))
    result = await debug_schema.execute("{ modles { name } }")
    assert result.errors is not None
    assert "Did you mean 'models'" in result.errors[0].message


# --- masking the unexpected -------------------------------------------------------------


async def drop_agents_table(database_url: str) -> None:
    """Break the database under the running app, as a botched deploy would."""
    engine = create_async_engine(database_url, poolclass=NullPool)
    cascade = "" if engine.dialect.name == "sqlite" else " CASCADE"
    try:
        async with engine.begin() as connection:
            await connection.execute(text(f"DROP TABLE agents{cascade}"))
    finally:
        await engine.dispose()


async def post(gql: GraphQLClient, query: str, request_id: str) -> Result:
    response = await gql.http.post(
        "/graphql",
        json={"query": query},
        headers={"Authorization": f"Bearer {token(1)}", "X-Request-ID": request_id},
    )
    assert response.headers["x-request-id"] == request_id
    return Result(response.status_code, response.json())


def logged_unexpected(caplog: pytest.LogCaptureFixture) -> logging.LogRecord:
    """The one error logged on "llm_gateway.graphql", checked to carry its traceback."""
    records = [r for r in caplog.records if r.name == "llm_gateway.graphql"]
    assert len(records) == 1, [r.getMessage() for r in records]
    record = records[0]
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None
    assert record.exc_info[1] is not None
    assert record.exc_info[2] is not None
    assert "Traceback (most recent call last)" in caplog.text
    return record


async def test_unexpected_failure_is_masked_and_logged(
    gql: GraphQLClient, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    assert (await gql("{ agents { name } }")).ok()["agents"]
    await drop_agents_table(database_url)

    with caplog.at_level(logging.ERROR, logger="llm_gateway.graphql"):
        result = await post(gql, "{ agents { name } }", "req-masking-1")

    assert result.status < 500
    assert result.data is None
    assert result.errors == [
        {
            "message": "Unexpected error.",
            "locations": [{"line": 1, "column": 3}],
            "path": ["agents"],
            "extensions": {"code": "INTERNAL_SERVER_ERROR"},
        }
    ]
    text = json.dumps(result.body).lower()
    for leak in ("select", "agents.", "sqlalchemy", "asyncpg", "sqlite", "traceback", "table"):
        assert leak not in text, leak

    record = logged_unexpected(caplog)
    assert "agents" in record.getMessage()
    assert "req-masking-1" in record.getMessage()
    assert getattr(record, "request_id", None) == "req-masking-1"
    assert "agents" in str(record.exc_info and record.exc_info[1])  # the cause, for operators


async def test_crash_outside_any_field_is_masked_and_logged(
    gql: GraphQLClient, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An exception raised outside the resolvers gets a code and is logged too.

    The trigger stands in for a bug in a step before execution: the operation limits'
    pass fails as strawberry's depth limiter once did on a spread of an unknown fragment.
    """

    def crash(document: object) -> None:
        raise KeyError("Nope")

    monkeypatch.setattr(limits, "analyse", crash)
    with caplog.at_level(logging.ERROR, logger="llm_gateway.graphql"):
        result = await post(gql, "{ ...Nope }", "req-masking-2")

    assert result.status < 500
    assert result.data is None
    assert [(e["message"], e.get("extensions")) for e in result.errors] == [
        ("Unexpected error.", {"code": "INTERNAL_SERVER_ERROR"})
    ]
    record = logged_unexpected(caplog)
    assert getattr(record, "request_id", None) == "req-masking-2"
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], KeyError)


class FailingExecution(SchemaExtension):
    def on_execute(self) -> Iterator[None]:
        if self.execution_context.query:  # always: fail before anything is executed
            raise RuntimeError("connection to 10.0.0.7 failed: password=hunter2")
        yield


async def test_a_failing_extension_is_masked_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    @strawberry.type
    class Query:
        value: int = 1

    guarded = GatewaySchema(query=Query, extensions=[ShapeErrors, FailingExecution])
    with caplog.at_level(logging.ERROR, logger="llm_gateway.graphql"):
        result = await guarded.execute("{ value }")

    assert result.data is None
    assert result.errors is not None
    assert [(e.message, e.extensions) for e in result.errors] == [
        ("Unexpected error.", {"code": "INTERNAL_SERVER_ERROR"})
    ]
    record = logged_unexpected(caplog)
    assert "hunter2" in str(record.exc_info and record.exc_info[1])  # kept for operators
