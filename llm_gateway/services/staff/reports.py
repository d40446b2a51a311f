"""Staff reads across users: every dialog with its messages, and the audit log.

Lists are keyset pages over ``(created_at, id)``, compared as rows so that PostgreSQL
starts its index range right at the cursor. Date filters are whole UTC days and ``to`` is
inclusive: ``from``/``to`` become ``[from 00:00, to + 1 day 00:00)`` (see ``date_bounds``).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Select, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from llm_gateway.db.models import AuditLog, Dialog, Message, Model
from llm_gateway.errors import ValidationFailed
from llm_gateway.services.plumbing.pagination import (
    Page,
    check_page_size,
    cursor_int,
    decode_time_cursor,
    encode_cursor,
    make_page,
)

ONE_DAY = dt.timedelta(days=1)
MAX_FILTER_LENGTH = 255


def day_start(day: dt.date) -> dt.datetime:
    """Midnight UTC at the start of ``day``."""
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def date_bounds(
    since: dt.date | None, until: dt.date | None, *, max_days: int | None = None
) -> tuple[dt.datetime | None, dt.datetime | None]:
    """``[since 00:00 UTC, until + 1 day 00:00 UTC)``: both days are included.

    ``from`` after ``to``, or more than ``max_days`` days in all, is VALIDATION_FAILED.
    """
    if since is not None and until is not None:
        if since > until:
            raise ValidationFailed("'from' must not be after 'to'.", field="from")
        days = (until - since).days + 1
        if max_days is not None and days > max_days:
            raise ValidationFailed(
                f"The range spans {days} days; at most {max_days} are allowed.",
                field="to",
                maximum=max_days,
            )
    start = day_start(since) if since is not None else None
    end = day_start(until) + ONE_DAY if until is not None and until < dt.date.max else None
    return start, end


def _check_filter(value: str | None, field: str) -> str | None:
    if value is not None and len(value) > MAX_FILTER_LENGTH:
        raise ValidationFailed(
            f"'{field}' must be at most {MAX_FILTER_LENGTH} characters.", field=field
        )
    return value


def _time_cursor(at: dt.datetime, row_id: object) -> str:
    return encode_cursor(at.isoformat(), str(row_id))


def _decode_time_cursor(cursor: str) -> tuple[dt.datetime, str]:
    return decode_time_cursor(cursor)


def _uuid_of(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise ValidationFailed("Invalid cursor.", field="after") from None


def _int_of(raw: str) -> int:
    return cursor_int(raw)


# -- dialogs -------------------------------------------------------------------------------


async def list_all_dialogs(
    session: AsyncSession,
    *,
    first: int | None,
    after: str | None,
    user_id: int | None,
    model: str | None,
    since: dt.datetime | None,
    until: dt.datetime | None,
    deleted: bool | None,
    max_page_size: int,
) -> Page[Dialog]:
    """Every user's dialogs, newest created first.

    ``model`` is the dialog's model name; ``deleted`` False keeps live dialogs, True only
    soft-deleted ones, None both. ``since``/``until`` bound ``created_at``.
    """
    size = check_page_size(first, max_page_size)
    query: Select[Dialog] = select(Dialog)
    if user_id is not None:
        query = query.where(Dialog.user_id == user_id)
    if _check_filter(model, "model") is not None:
        query = query.where(Dialog.model_id.in_(select(Model.id).where(Model.name == model)))
    if deleted is not None:
        query = query.where(
            Dialog.deleted_at.is_not(None) if deleted else Dialog.deleted_at.is_(None)
        )
    if since is not None:
        query = query.where(Dialog.created_at >= since)
    if until is not None:
        query = query.where(Dialog.created_at < until)
    if after is not None:
        at, raw_id = _decode_time_cursor(after)
        last_id = _uuid_of(raw_id)
        query = query.where(tuple_(Dialog.created_at, Dialog.id) < (at, last_id))
    query = query.order_by(Dialog.created_at.desc(), Dialog.id.desc()).limit(size + 1)
    rows = (await session.scalars(query)).all()
    return make_page(
        rows, size, lambda row: _time_cursor(row.created_at, row.id), after=after is not None
    )


@dataclass(frozen=True, slots=True)
class MessagePageKey:
    """Which page of one dialog's messages to load; checked, so loading cannot fail."""

    dialog_id: uuid.UUID
    size: int
    after: tuple[dt.datetime, uuid.UUID] | None


def message_page_key(
    dialog_id: uuid.UUID, first: int | None, after: str | None, *, max_page_size: int
) -> MessagePageKey:
    size = check_page_size(first, max_page_size)
    if after is None:
        return MessagePageKey(dialog_id, size, None)
    at, raw_id = _decode_time_cursor(after)
    return MessagePageKey(dialog_id, size, (at, _uuid_of(raw_id)))


async def message_pages(
    session: AsyncSession, keys: Sequence[MessagePageKey]
) -> dict[MessagePageKey, Page[Message]]:
    """A page of messages, oldest first, for each dialog in ``keys``.

    One statement per distinct (page size, cursor) among the keys: a GraphQL list asks
    every dialog for the same page, so that is one statement for the whole list. The
    cursors are those of ``messages(dialogId, …)``, so either list can resume the other.
    """
    groups: dict[tuple[int, tuple[dt.datetime, uuid.UUID] | None], set[uuid.UUID]] = defaultdict(
        set
    )
    for key in keys:
        groups[key.size, key.after].add(key.dialog_id)
    pages: dict[MessagePageKey, Page[Message]] = {}
    for (size, after), dialog_ids in groups.items():
        ranked_query = select(
            Message.id,
            func.row_number()
            .over(partition_by=Message.dialog_id, order_by=(Message.created_at, Message.id))
            .label("rank"),
        ).where(Message.dialog_id.in_(dialog_ids))
        if after is not None:
            at, last_id = after
            ranked_query = ranked_query.where(
                tuple_(Message.created_at, Message.id) > (at, last_id)
            )
        ranked = ranked_query.subquery()
        rows = await session.scalars(
            select(Message)
            .join(ranked, ranked.c.id == Message.id)
            .where(ranked.c.rank <= size + 1)
            .order_by(Message.dialog_id, Message.created_at, Message.id)
        )
        by_dialog: dict[uuid.UUID, list[Message]] = defaultdict(list)
        for row in rows:
            by_dialog[row.dialog_id].append(row)
        for dialog_id in dialog_ids:
            pages[MessagePageKey(dialog_id, size, after)] = make_page(
                by_dialog[dialog_id],
                size,
                lambda row: _time_cursor(row.created_at, row.id),
                after=after is not None,
            )
    return pages


# -- the audit log ---------------------------------------------------------------------------


async def list_audit_logs(
    session: AsyncSession,
    *,
    first: int | None,
    after: str | None,
    actor_id: int | None,
    action: str | None,
    resource_type: str | None,
    resource_id: str | None,
    since: dt.datetime | None,
    until: dt.datetime | None,
    max_page_size: int,
) -> Page[AuditLog]:
    """Audit entries, newest first; every filter is an exact match."""
    size = check_page_size(first, max_page_size)
    query: Select[AuditLog] = select(AuditLog)
    if actor_id is not None:
        query = query.where(AuditLog.actor_id == actor_id)
    if _check_filter(action, "action") is not None:
        query = query.where(AuditLog.action == action)
    if _check_filter(resource_type, "resourceType") is not None:
        query = query.where(AuditLog.resource_type == resource_type)
    if _check_filter(resource_id, "resourceId") is not None:
        query = query.where(AuditLog.resource_id == resource_id)
    if since is not None:
        query = query.where(AuditLog.created_at >= since)
    if until is not None:
        query = query.where(AuditLog.created_at < until)
    if after is not None:
        at, raw_id = _decode_time_cursor(after)
        last_id = _int_of(raw_id)
        query = query.where(tuple_(AuditLog.created_at, AuditLog.id) < (at, last_id))
    query = query.order_by(AuditLog.created_at.desc(), AuditLog.id.desc()).limit(size + 1)
    rows = (await session.scalars(query)).all()
    return make_page(
        rows, size, lambda row: _time_cursor(row.created_at, row.id), after=after is not None
    )
