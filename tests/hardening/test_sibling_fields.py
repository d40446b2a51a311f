"""A failing field no longer drops its siblings' resolvers unawaited.

(``llm_gateway.schema.guards.sibling_fields``)

graphql-core cancelled the siblings of a failing non-null field; a sibling cancelled before
it started dropped the resolvers it held, and Python warned "coroutine … was never
awaited" (an error in this suite). The timings are set with event-loop ticks, so the
race that the fuzzer (tests/hardening/test_fuzz_graphql.py) met by chance happens on every run.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
from typing import Any

from graphql import (
    GraphQLField,
    GraphQLInt,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    graphql,
)

from llm_gateway.schema.guards import sibling_fields as execution


async def ticks(count: int) -> None:
    for _ in range(count):
        await asyncio.sleep(0)


def schema(fail_after: int, items_after: int) -> GraphQLSchema:
    """``fail`` raises after ``fail_after`` ticks; ``items``' fields resolve slowly."""

    async def fail(*_: Any) -> int:
        await ticks(fail_after)
        raise ValueError(f"failed after {fail_after} ticks")

    async def items(*_: Any) -> list[int]:
        await ticks(items_after)
        return [1, 2, 3]

    async def slow(value: int, *_: Any) -> int:
        await asyncio.sleep(0.01)
        return value

    item = GraphQLObjectType("Item", {"n": GraphQLField(GraphQLInt, resolve=slow)})
    query = GraphQLObjectType(
        "Query",
        {
            "fail": GraphQLField(GraphQLNonNull(GraphQLInt), resolve=fail),
            "items": GraphQLField(GraphQLNonNull(GraphQLList(item)), resolve=items),
        },
    )
    return GraphQLSchema(query)


async def test_a_failing_field_leaves_no_sibling_unawaited() -> None:
    execution.install()
    for fail_after, items_after in itertools.product(range(5), repeat=2):  # (0, 3) did it
        result = await graphql(schema(fail_after, items_after), "{ items { n } fail }")
        assert result.data is None
        assert [e.message for e in result.errors or []] == [f"failed after {fail_after} ticks"]
    await asyncio.sleep(0.05)  # what was left behind would have finished by now
    gc.collect()  # and an unawaited coroutine is reported here, failing the test


async def test_the_first_failing_field_in_the_document_is_the_one_reported() -> None:
    """Not the first to fail in time: the answer no longer depends on timing."""
    execution.install()

    async def after(count: int, *_: Any) -> int:
        await ticks(count)
        raise ValueError(f"{count} ticks")

    query = GraphQLObjectType(
        "Query",
        {
            "slow": GraphQLField(GraphQLNonNull(GraphQLInt), resolve=lambda *a: after(3)),
            "fast": GraphQLField(GraphQLNonNull(GraphQLInt), resolve=lambda *a: after(0)),
        },
    )
    result = await graphql(GraphQLSchema(query), "{ slow fast }")
    assert [e.path for e in result.errors or []] == [["slow"]]
