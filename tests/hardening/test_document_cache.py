"""Parsed and validated documents are cached per process: the cache must be invisible.

Every schema, whatever its limits, answers a document as if it were the first time it saw
it, however often the same text comes and in whatever order schemas see it; failures are
reported as without the cache. No database is involved: the operations ask for
``__typename`` only, or are refused before anything is resolved (no token).
"""

from __future__ import annotations

from typing import Any

from llm_gateway.errors import Unauthenticated
from llm_gateway.schema.build import GatewaySchema, build_schema
from llm_gateway.schema.guards import document_cache as documents
from tests.conftest import make_settings

ANY_DATABASE = "sqlite+aiosqlite:///:memory:"  # building a schema opens no connection

DEPTH_5 = "{ models { fallbackModel { fallbackModel { fallbackModel { name } } } } }"
THREE_ALIASES = "{ a: __typename b: __typename c: __typename }"
TOKENS_125 = " ".join(f"query Q{i} {{ __typename }}" for i in range(25))  # 5 tokens each


class Anonymous:
    """A request without a token: any field it reaches is refused as UNAUTHENTICATED."""

    @property
    def principal(self) -> None:
        raise Unauthenticated("No access token.")


def schema_with(**limits: Any) -> GatewaySchema:
    return build_schema(make_settings(ANY_DATABASE, **limits))


async def outcome(schema: GatewaySchema, query: str, **kwargs: Any) -> list[tuple[str, Any]]:
    """Each error's message and code, or ``[("ok", None)]``."""
    result = await schema.execute(query, context_value=Anonymous(), **kwargs)
    if not result.errors:
        assert result.data is not None
        return [("ok", None)]
    return [(e.message, (e.extensions or {}).get("code")) for e in result.errors]


async def test_schemas_with_other_depth_limits_never_share_a_verdict() -> None:
    strict, loose = schema_with(graphql_max_depth=3), schema_with(graphql_max_depth=12)
    refused = [("'anonymous' exceeds maximum operation depth of 3", "GRAPHQL_VALIDATION_FAILED")]

    for _ in range(2):  # the second round is answered from the caches
        assert await outcome(loose, DEPTH_5) == [("No access token.", "UNAUTHENTICATED")]
        assert await outcome(strict, DEPTH_5) == refused


async def test_schemas_with_other_alias_limits_never_share_a_verdict() -> None:
    strict, loose = schema_with(graphql_max_aliases=2), schema_with(graphql_max_aliases=30)

    for _ in range(2):
        assert await outcome(strict, THREE_ALIASES) == [
            ("3 aliases found. Allowed: 2", "GRAPHQL_VALIDATION_FAILED")
        ]
        assert await outcome(loose, THREE_ALIASES) == [("ok", None)]


async def test_a_document_parsed_under_a_higher_token_limit_is_still_refused_under_a_lower() -> (
    None
):
    strict, loose = schema_with(graphql_max_tokens=100), schema_with(graphql_max_tokens=5_000)

    for _ in range(2):
        assert await outcome(loose, TOKENS_125, operation_name="Q0") == [("ok", None)]
        [(message, code)] = await outcome(strict, TOKENS_125, operation_name="Q0")
        assert code == "GRAPHQL_PARSE_FAILED"
        assert "more than 100 tokens" in message


async def test_suggestions_stay_with_the_schema_that_gives_them() -> None:
    debug, production = schema_with(debug=True), schema_with(debug=False)

    for _ in range(2):
        [(shown, _)] = await outcome(debug, "{ modles { name } }")
        [(hidden, code)] = await outcome(production, "{ modles { name } }")
        assert "Did you mean 'models'" in shown
        assert "Did you mean" not in hidden
        assert code == "GRAPHQL_VALIDATION_FAILED"


async def test_failures_are_reported_alike_every_time() -> None:
    schema = schema_with()

    syntax = [await outcome(schema, "{ __typename") for _ in range(3)]
    invalid = [await outcome(schema, "{ nope }") for _ in range(3)]

    assert syntax[0][0][1] == "GRAPHQL_PARSE_FAILED"
    assert syntax[0][0][0].startswith("Syntax Error")
    assert invalid[0] == [
        ("Cannot query field 'nope' on type 'Query'.", "GRAPHQL_VALIDATION_FAILED")
    ]
    assert syntax == [syntax[0]] * 3
    assert invalid == [invalid[0]] * 3


async def test_a_repeated_document_is_parsed_and_validated_once() -> None:
    """The depth and alias rules are built once per schema, so the validation cache hits."""
    schema = schema_with()
    query = "{ again: __typename }"  # a text no other test sends
    assert await outcome(schema, query) == [("ok", None)]
    parsed, validated = documents._parsed.cache_info(), documents._validated.cache_info()

    for _ in range(3):
        assert await outcome(schema, query) == [("ok", None)]

    assert documents._parsed.cache_info().misses == parsed.misses
    assert documents._validated.cache_info().misses == validated.misses
    assert documents._validated.cache_info().hits == validated.hits + 3
