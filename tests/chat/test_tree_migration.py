"""The migration to the message tree turns each flat dialog into a single branch that
keeps every question on its active path; older regenerated answers become siblings."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from llm_gateway.db import migrate
from tests.platform.test_migrations import empty_database, on_database

__all__ = ["empty_database"]  # the fixture, used by name

START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
dialogs = sa.table(
    "dialogs",
    sa.column("id", sa.Uuid()),
    sa.column("user_id", sa.BigInteger()),
    sa.column("model_id", sa.Integer()),
    sa.column("active_leaf_id", sa.Uuid()),
)
messages = sa.table(
    "messages",
    sa.column("id", sa.Uuid()),
    sa.column("dialog_id", sa.Uuid()),
    sa.column("user_id", sa.BigInteger()),
    sa.column("role", sa.String()),
    sa.column("content", sa.Text()),
    sa.column("status", sa.String()),
    sa.column("parent_id", sa.Uuid()),
    sa.column("created_at", sa.DateTime(timezone=True)),
)


def flat_dialog(connection: Connection, rows: list[tuple[str, str, str | None]]) -> uuid.UUID:
    """A dialog as 0004 stored it: (name, role, name of the question it answers)."""
    dialog_id = uuid.uuid4()
    model_id = connection.scalar(sa.text("SELECT id FROM models ORDER BY id LIMIT 1"))
    connection.execute(dialogs.insert().values(id=dialog_id, user_id=1, model_id=model_id))
    ids = {name: uuid.uuid5(dialog_id, name) for name, _, _ in rows}
    for minute, (name, role, question) in enumerate(rows):
        connection.execute(
            messages.insert().values(
                id=ids[name],
                dialog_id=dialog_id,
                user_id=1,
                role=role,
                content=name,
                status="complete",
                parent_id=ids[question] if question else None,
                created_at=START + dt.timedelta(minutes=minute),
            )
        )
    return dialog_id


def parents_of(connection: Connection, dialog_id: uuid.UUID) -> dict[str, Any]:
    return tree_of(connection, dialog_id, with_leaf=False)[0]


def tree_of(
    connection: Connection, dialog_id: uuid.UUID, *, with_leaf: bool = True
) -> tuple[dict[str, Any], Any]:
    names = {
        row.id: row.content
        for row in connection.execute(
            sa.select(messages.c.id, messages.c.content).where(messages.c.dialog_id == dialog_id)
        )
    }
    parents = {
        row.content: names.get(row.parent_id)
        for row in connection.execute(
            sa.select(messages.c.content, messages.c.parent_id).where(
                messages.c.dialog_id == dialog_id
            )
        )
    }
    if not with_leaf:
        return parents, None
    leaf = connection.scalar(sa.select(dialogs.c.active_leaf_id).where(dialogs.c.id == dialog_id))
    return parents, names.get(leaf)


def test_flat_dialogs_become_single_branches(empty_database: str) -> None:
    migrate.upgrade(empty_database, "0004")

    def seed(connection: Connection) -> list[uuid.UUID]:
        return [
            # Q1 answered twice before Q2 (the second is the context), Q2's answer
            # regenerated after Q3 was asked, an answer whose question was deleted.
            flat_dialog(
                connection,
                [
                    ("Q1", "user", None),
                    ("A1", "assistant", "Q1"),
                    ("A1b", "assistant", "Q1"),
                    ("Q2", "user", None),
                    ("A2", "assistant", "Q2"),
                    ("Q3", "user", None),
                    ("A2b", "assistant", "Q2"),
                    ("orphan", "assistant", None),
                ],
            ),
            # A question whose answer failed to be written, then another question.
            flat_dialog(connection, [("P1", "user", None), ("P2", "user", None)]),
            flat_dialog(connection, []),
        ]

    first, second, empty = on_database(empty_database, seed)
    migrate.upgrade(empty_database, "0005")

    parents, leaf = on_database(empty_database, lambda c: tree_of(c, first))
    assert parents == {
        "Q1": None,
        "A1": "Q1",
        "A1b": "Q1",
        "Q2": "A1b",
        "A2": "Q2",
        "Q3": "A2",
        "A2b": "Q2",
        "orphan": "Q3",
    }
    assert leaf == "orphan"  # the newest answer to the last question: every Q on the path
    assert on_database(empty_database, lambda c: tree_of(c, second)) == (
        {"P1": None, "P2": "P1"},
        "P2",
    )
    assert on_database(empty_database, lambda c: tree_of(c, empty)) == ({}, None)

    migrate.downgrade(empty_database, "0004")
    parents = on_database(empty_database, lambda c: parents_of(c, first))
    assert {name for name, parent in parents.items() if parent is None} == {"Q1", "Q2", "Q3"}
