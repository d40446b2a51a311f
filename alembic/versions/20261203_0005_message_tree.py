"""message tree

Every message hangs off the previous message on its branch (``parent_id``) and a dialog
remembers its active leaf. Before this, a user message had no parent and an answer hung
off its question; existing dialogs become single branches here:

- a user message's parent is the newest answer to the user message before it that was
  written before it (or that user message itself, if it had no answer yet);
- an answer left without a question (its question deleted) hangs off the user message
  written just before it;
- the active leaf is the newest answer to the dialog's last user message (or that
  message), so every question of a dialog stays on its active path; older regenerated
  answers become sibling branches.

No foreign key on ``dialogs.active_leaf_id``: dialogs and messages would reference each
other, and the service moves the leaf itself when a message is deleted.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 09:30:00.000000
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

messages = sa.table(
    "messages",
    sa.column("id", sa.Uuid()),
    sa.column("dialog_id", sa.Uuid()),
    sa.column("role", sa.String()),
    sa.column("parent_id", sa.Uuid()),
    sa.column("created_at", sa.DateTime(timezone=True)),
)
dialogs = sa.table("dialogs", sa.column("id", sa.Uuid()), sa.column("active_leaf_id", sa.Uuid()))


def _link(rows: list[Any]) -> tuple[list[dict[str, Any]], Any]:
    """New parents for one dialog's rows (oldest first), and its active leaf."""
    changes: list[dict[str, Any]] = []
    answers: dict[Any, list[Any]] = {}  # question id -> its answers' ids, oldest first
    previous_user: Any = None
    for row in rows:
        if row.role == "user":
            parent = None
            if previous_user is not None:
                earlier = answers.get(previous_user, [])
                parent = earlier[-1] if earlier else previous_user
            if parent != row.parent_id:
                changes.append({"row_id": row.id, "new_parent": parent})
            previous_user = row.id
            continue
        parent = row.parent_id
        if parent is None and previous_user is not None:
            parent = previous_user
            changes.append({"row_id": row.id, "new_parent": parent})
        if parent is not None:
            answers.setdefault(parent, []).append(row.id)
    if previous_user is None:
        leaf = rows[-1].id if rows else None
    else:
        last_answers = answers.get(previous_user, [])
        leaf = last_answers[-1] if last_answers else previous_user
    return changes, leaf


def upgrade() -> None:
    with op.batch_alter_table("dialogs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("active_leaf_id", sa.Uuid(), nullable=True))

    connection = op.get_bind()
    reparent = (
        messages.update()
        .where(messages.c.id == sa.bindparam("row_id"))
        .values(parent_id=sa.bindparam("new_parent"))
    )
    set_leaf = (
        dialogs.update()
        .where(dialogs.c.id == sa.bindparam("dialog"))
        .values(active_leaf_id=sa.bindparam("leaf"))
    )
    ordered = sa.select(
        messages.c.id, messages.c.dialog_id, messages.c.role, messages.c.parent_id
    ).order_by(messages.c.dialog_id, messages.c.created_at, messages.c.id)
    result = connection.execute(ordered)
    current: Any = None
    rows: list[Any] = []

    def flush() -> None:
        if current is None:
            return
        changes, leaf = _link(rows)
        if changes:
            connection.execute(reparent, changes)
        connection.execute(set_leaf, [{"dialog": current, "leaf": leaf}])

    for row in result.fetchall():
        if row.dialog_id != current:
            flush()
            current, rows = row.dialog_id, []
        rows.append(row)
    flush()


def downgrade() -> None:
    # Back to the flat shape: user messages have no parent. Edited questions stay as
    # separate user messages in the order they were written.
    connection = op.get_bind()
    connection.execute(messages.update().where(messages.c.role == "user").values(parent_id=None))
    with op.batch_alter_table("dialogs", schema=None) as batch_op:
        batch_op.drop_column("active_leaf_id")
