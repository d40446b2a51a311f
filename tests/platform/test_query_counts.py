"""Relations go through DataLoaders: the statement count does not grow with the page."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from tests.factories import add_message, create_dialog, database_of
from tests.support import GraphQLClient

QUERY = """
{ dialogs(first: 50) { edges { node {
    model { name } agent { name } lastMessage { content }
} } } }"""


@contextmanager
def count_statements(app: Any) -> Iterator[list[str]]:
    statements: list[str] = []
    engine = database_of(app).engine.sync_engine

    def record(*args: Any) -> None:
        statements.append(args[2])

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


async def _fill(app: Any, owner: int, count: int) -> None:
    for i in range(count):
        dialog_id = await create_dialog(
            app, owner, title=f"d{i}", model="gpt-4-turbo" if i % 2 else None, agent_id=1 + i % 3
        )
        await add_message(app, dialog_id, owner, f"hello {i}")


async def test_dialog_page_statement_count_is_constant(gql: GraphQLClient, app: Any) -> None:
    await _fill(app, 5, 5)
    await _fill(app, 50, 50)

    with count_statements(app) as small:
        five = (await gql(QUERY, user=5)).ok()["dialogs"]["edges"]
    with count_statements(app) as large:
        fifty = (await gql(QUERY, user=50)).ok()["dialogs"]["edges"]

    assert len(five) == 5
    assert len(fifty) == 50
    assert all(e["node"]["lastMessage"]["content"].startswith("hello") for e in fifty)
    assert {e["node"]["model"]["name"] for e in fifty} == {"mock", "gpt-4-turbo"}
    assert len(small) == len(large), (small, large)
    # The page, models, agents and last messages: one statement each at most.
    # The page, then one batch each for models, agents and last messages.
    queries = [s for s in large if not s.startswith("BEGIN")]
    assert len(queries) == 4, queries
