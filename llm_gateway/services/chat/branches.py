"""The message tree of a dialog: its active path, siblings, and switching branches.

A dialog's messages form a tree through ``parent_id``; the dialog's ``active_leaf_id``
names the newest message of the branch the user is on. The active path is that leaf and
its ancestors, read with one recursive query (PostgreSQL and SQLite alike). A child is
always written after its parent, so a path ordered by ``created_at`` runs root to leaf.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import NamedTuple

from sqlalchemy import CTE, ColumnElement, and_, bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.orm.attributes import set_committed_value

from llm_gateway.db.models import Dialog, Message
from llm_gateway.errors import NotFound

SiblingKey = tuple[uuid.UUID, uuid.UUID | None]
"""A message's dialog and parent: the messages sharing both are siblings."""


async def current_leaf(session: AsyncSession, dialog: Dialog) -> uuid.UUID | None:
    """The dialog's active leaf; without one (an empty dialog), its newest message."""
    if dialog.active_leaf_id is not None:
        return dialog.active_leaf_id
    newest: uuid.UUID | None = await session.scalar(
        select(Message.id)
        .where(Message.dialog_id == dialog.id)
        .order_by(Message.created_at.desc(), Message.id.desc())
        .limit(1)
    )
    return newest


async def path_to(
    session: AsyncSession,
    dialog_id: uuid.UUID,
    tip: uuid.UUID,
    *,
    after: tuple[dt.datetime, uuid.UUID] | None = None,
    limit: int | None = None,
) -> list[Message]:
    """``tip`` and its ancestors, root first (optionally only those past a cursor).

    UNION (not UNION ALL) stops the recursion even if rows ever formed a cycle. The
    recursive part is built once, at import: building it cost milliseconds a call.
    """
    values = {"tip": tip, "dialog_id": dialog_id}
    if after is None and limit is None:
        return list((await session.scalars(_PATH, values)).all())
    query = _PATH_UNORDERED
    if after is not None:
        at, last_id = after
        query = query.where(
            or_(Message.created_at > at, and_(Message.created_at == at, Message.id > last_id))
        )
    query = query.order_by(Message.created_at, Message.id)
    if limit is not None:
        query = query.limit(limit)
    return list((await session.scalars(query, values)).all())


async def newest_leaf_under(
    session: AsyncSession, message_id: uuid.UUID, *, excluding: uuid.UUID | None = None
) -> uuid.UUID:
    """The newest message of ``message_id``'s subtree (itself if it has no replies).

    The newest descendant is always a leaf: a reply is written after what it replies to.
    """
    subtree = select(Message.id).where(Message.id == message_id).cte(recursive=True)
    child = aliased(Message)
    subtree = subtree.union(select(child.id).join(subtree, child.parent_id == subtree.c.id))
    query = select(Message.id).join(subtree, subtree.c.id == Message.id)
    if excluding is not None:
        query = query.where(Message.id != excluding)
    newest = await session.scalar(
        query.order_by(Message.created_at.desc(), Message.id.desc()).limit(1)
    )
    return newest or message_id


async def set_leaf(session: AsyncSession, dialog_id: uuid.UUID, leaf: uuid.UUID | None) -> None:
    """Point the dialog at ``leaf`` without moving ``updated_at`` (no new message)."""
    await session.execute(
        update(Dialog)
        .where(Dialog.id == dialog_id)
        .values(active_leaf_id=leaf, updated_at=Dialog.updated_at)
        .execution_options(synchronize_session=False)
    )


async def switch_branch(session: AsyncSession, dialog: Dialog, message_id: uuid.UUID) -> Dialog:
    """Make the branch through ``message_id`` active: its newest leaf becomes the leaf."""
    in_dialog = await session.scalar(
        select(Message.id).where(Message.id == message_id, Message.dialog_id == dialog.id)
    )
    if in_dialog is None:
        raise NotFound("Message not found in this dialog.", id=str(message_id))
    leaf = await newest_leaf_under(session, message_id)
    await set_leaf(session, dialog.id, leaf)
    set_committed_value(dialog, "active_leaf_id", leaf)  # written above, not a change
    return dialog


async def sibling_ids(
    session: AsyncSession, keys: Sequence[SiblingKey]
) -> dict[SiblingKey, list[uuid.UUID]]:
    """For each (dialog, parent): the ids of its children, oldest first, in one statement."""
    parents = {parent for _, parent in keys if parent is not None}
    root_dialogs = {dialog for dialog, parent in keys if parent is None}
    conditions: list[ColumnElement[bool]] = []
    if parents:
        conditions.append(Message.parent_id.in_(parents))
    if root_dialogs:
        conditions.append(and_(Message.dialog_id.in_(root_dialogs), Message.parent_id.is_(None)))
    found: dict[SiblingKey, list[uuid.UUID]] = {}
    if not conditions:
        return found
    rows = await session.execute(
        select(Message.id, Message.dialog_id, Message.parent_id)
        .where(or_(*conditions))
        .order_by(Message.created_at, Message.id)
    )
    for message_id, dialog_id, parent_id in rows:
        found.setdefault((dialog_id, parent_id), []).append(message_id)
    return found


async def turns_to(session: AsyncSession, dialog_id: uuid.UUID, tip: uuid.UUID) -> list[Turn]:
    """The role, status and text of ``tip`` and its ancestors, root first: what a prompt
    is built from, as plain rows (a long dialog's history is no unit of work's business)."""
    rows = await session.execute(_TURNS, {"tip": tip, "dialog_id": dialog_id})
    return [Turn(role, status, content) for role, status, content in rows]


class Turn(NamedTuple):
    """One message of a branch, as a prompt needs it (``role`` a ``Role``, ``status`` a
    ``MessageStatus``, as the columns store them)."""

    role: str
    status: str
    content: str


def _branch() -> CTE:
    """The ids of the branch ending at ``:tip`` (and their parents), by recursion."""
    branch = (
        select(Message.id, Message.parent_id)
        .where(Message.id == bindparam("tip"))
        .cte(recursive=True)
    )
    step = aliased(Message)
    return branch.union(select(step.id, step.parent_id).join(branch, step.id == branch.c.parent_id))


_BRANCH = _branch()
_PATH_UNORDERED = (
    select(Message)
    .join(_BRANCH, _BRANCH.c.id == Message.id)
    .where(Message.dialog_id == bindparam("dialog_id"))
)
_PATH = _PATH_UNORDERED.order_by(Message.created_at, Message.id)
_TURNS = (
    select(Message.role, Message.status, Message.content)
    .join(_BRANCH, _BRANCH.c.id == Message.id)
    .where(Message.dialog_id == bindparam("dialog_id"))
    .order_by(Message.created_at, Message.id)
)
