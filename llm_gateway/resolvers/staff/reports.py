"""Staff reads across users: every dialog, the audit log, usage statistics."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import strawberry

from llm_gateway.schema.context import Info
from llm_gateway.schema.pagination import Connection
from llm_gateway.schema.scalars import SafeInt
from llm_gateway.schema.staff.reports import (
    AuditLogEntry,
    StaffDialogType,
    UsageGroupBy,
    UsageSource,
    UsageStats,
)
from llm_gateway.services.staff import reports, usage_stats

From = Annotated[
    dt.date | None, strawberry.argument(name="from", description="First UTC day, included.")
]
To = Annotated[dt.date | None, strawberry.argument(description="Last UTC day, included.")]


async def all_dialogs(
    info: Info,
    first: int | None = None,
    after: str | None = None,
    user_id: SafeInt | None = None,
    model: Annotated[str | None, strawberry.argument(description="The dialog's model.")] = None,
    from_: From = None,
    to: To = None,
    deleted: Annotated[
        bool | None,
        strawberry.argument(description="false: live dialogs; true: deleted ones; null: both."),
    ] = False,
) -> Connection[StaffDialogType]:
    """Every user's dialogs, newest first, filtered by owner, model and creation day."""
    ctx = info.context
    since, until = reports.date_bounds(from_, to)
    async with ctx.services.db.read() as session:
        page = await reports.list_all_dialogs(
            session,
            first=first,
            after=after,
            user_id=user_id,
            model=model,
            since=since,
            until=until,
            deleted=deleted,
            max_page_size=ctx.services.settings.graphql_max_page_size,
        )
    return Connection.of(page, StaffDialogType.from_row)


async def audit_logs(
    info: Info,
    first: int | None = None,
    after: str | None = None,
    actor_id: SafeInt | None = None,
    action: str | None = None,
    resource_type: str | None = None,
    resource_id: str | None = None,
    from_: From = None,
    to: To = None,
) -> Connection[AuditLogEntry]:
    """Staff actions, newest first; each filter is an exact match."""
    ctx = info.context
    since, until = reports.date_bounds(from_, to)
    async with ctx.services.db.read() as session:
        page = await reports.list_audit_logs(
            session,
            first=first,
            after=after,
            actor_id=actor_id,
            action=action,
            resource_type=resource_type,
            resource_id=resource_id,
            since=since,
            until=until,
            max_page_size=ctx.services.settings.graphql_max_page_size,
        )
    return Connection.of(page, AuditLogEntry.from_row)


async def usage_stats_report(
    info: Info,
    from_: Annotated[dt.date, strawberry.argument(name="from")],
    to: dt.date,
    group_by: UsageGroupBy,
    # Not ``source``: strawberry's extensions take the parent object by that name.
    only: Annotated[UsageSource | None, strawberry.argument(name="source")] = None,
) -> UsageStats:
    """Requests, tokens, cost, errors and latency from ``from`` to ``to`` (UTC days,
    both included, at most 366), by day, model, user or source; ``source`` keeps only
    chat answers or only /v1 requests."""
    async with info.context.services.db.read() as session:
        report = await usage_stats.usage_stats(
            session,
            from_,
            to,
            usage_stats.GroupBy(group_by.value),
            source=usage_stats.Source(only.value) if only is not None else None,
        )
    return UsageStats.from_report(report)
