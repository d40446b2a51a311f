"""What staff read across users: every dialog, the audit log, usage statistics."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from decimal import Decimal
from typing import TYPE_CHECKING

import strawberry
from strawberry.scalars import JSON

from llm_gateway.schema.chat.types import DialogType, MessageType
from llm_gateway.schema.context import Info
from llm_gateway.schema.pagination import Connection
from llm_gateway.schema.scalars import SafeInt
from llm_gateway.services.staff import reports

if TYPE_CHECKING:
    from llm_gateway.db import models as db
    from llm_gateway.services.staff import usage_stats


@strawberry.type(name="StaffDialog")
class StaffDialogType(DialogType):
    """Any user's dialog as staff see it, soft-deleted ones included."""

    user_id: SafeInt = strawberry.field(description="The owner.")
    deleted_at: dt.datetime | None = strawberry.field(description="Set when soft-deleted.")

    @strawberry.field(description="The dialog's messages, oldest first.")  # type: ignore[untyped-decorator]
    async def messages(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[MessageType]:
        key = reports.message_page_key(
            self.id,
            first,
            after,
            max_page_size=info.context.services.settings.graphql_max_page_size,
        )
        page = await info.context.loaders.dialog_messages.load(key)
        assert page is not None  # the batch answers every key
        return Connection.of(page, MessageType.from_row)

    @staticmethod
    def from_row(row: db.Dialog) -> StaffDialogType:
        base = DialogType.from_row(row)
        shared = {f.name: getattr(base, f.name) for f in dataclasses.fields(base) if f.init}
        return StaffDialogType(**shared, user_id=row.user_id, deleted_at=row.deleted_at)


@strawberry.type
class AuditLogEntry:
    """One staff action and what it changed (secrets redacted)."""

    id: strawberry.ID
    actor_id: SafeInt | None = strawberry.field(description="The staff member's user id.")
    action: str = strawberry.field(description="For example balance.topup or config.set.")
    resource_type: str
    resource_id: str | None
    before: JSON | None
    after: JSON | None
    ip_address: str | None
    user_agent: str | None
    request_id: str | None
    created_at: dt.datetime

    @staticmethod
    def from_row(row: db.AuditLog) -> AuditLogEntry:
        return AuditLogEntry(
            id=strawberry.ID(str(row.id)),
            actor_id=row.actor_id,
            action=row.action,
            resource_type=row.resource_type,
            resource_id=row.resource_id,
            before=None if row.before is None else JSON(row.before),
            after=None if row.after is None else JSON(row.after),
            ip_address=row.ip_address,
            user_agent=row.user_agent,
            request_id=row.request_id,
            created_at=row.created_at,
        )


@strawberry.enum
class UsageGroupBy(enum.Enum):
    DAY = "day"
    MODEL = "model"
    USER = "user"
    SOURCE = "source"


@strawberry.enum(description="Where a request came in.")
class UsageSource(enum.Enum):
    CHAT = strawberry.enum_value("chat", description="A GraphQL chat answer.")
    API = strawberry.enum_value("api", description="An OpenAI-compatible /v1 request.")


@strawberry.type
class UsageRow:
    """Usage in one bucket: the chat answers and /v1 requests created in it."""

    key: str = strawberry.field(
        description="DAY: the UTC day (ISO date); MODEL: the model that answered; "
        "USER: the user id; SOURCE: `chat` or `api`; `total` for the whole range."
    )
    requests: SafeInt = strawberry.field(description="Generations: chat answers and /v1 requests.")
    prompt_tokens: SafeInt = strawberry.field(
        description="All input tokens, the cache's reads and writes included."
    )
    cache_read_tokens: SafeInt = strawberry.field(
        description="Of promptTokens, read from the providers' prompt caches."
    )
    cache_write_tokens: SafeInt = strawberry.field(
        description="Of promptTokens, written to the providers' prompt caches."
    )
    completion_tokens: SafeInt
    reasoning_tokens: SafeInt = strawberry.field(
        description="Of completionTokens, spent reasoning (as far as providers report it)."
    )
    charged_tokens: SafeInt = strawberry.field(description="Tokens taken from balances.")
    cost_usd: Decimal
    cache_saved_tokens: SafeInt = strawberry.field(
        description="Balance tokens the prompt cache saved: cache reads at the prompt weight "
        "less at their own, less what cache writes cost beyond the prompt weight (at the "
        "models' current weights; negative while writes outweigh reads)."
    )
    cache_saved_usd: Decimal = strawberry.field(
        description="The same saving in USD, at the models' current prices."
    )
    errors: SafeInt = strawberry.field(description="Generations that ended FAILED.")
    latency_p50_ms: float | None = strawberry.field(
        description="Median total time of COMPLETE generations; null when there are none."
    )
    latency_p95_ms: float | None = strawberry.field(
        description="95th percentile (interpolated, like percentile_cont) of the same."
    )

    @staticmethod
    def from_row(row: usage_stats.UsageRow) -> UsageRow:
        return UsageRow(
            key=row.key,
            requests=row.requests,
            prompt_tokens=row.prompt_tokens,
            cache_read_tokens=row.cache_read_tokens,
            cache_write_tokens=row.cache_write_tokens,
            completion_tokens=row.completion_tokens,
            reasoning_tokens=row.reasoning_tokens,
            charged_tokens=row.charged_tokens,
            cost_usd=row.cost_usd,
            cache_saved_tokens=row.cache_saved_tokens,
            cache_saved_usd=row.cache_saved_usd,
            errors=row.errors,
            latency_p50_ms=row.latency_p50_ms,
            latency_p95_ms=row.latency_p95_ms,
        )


@strawberry.type
class UsageStats:
    from_: dt.date = strawberry.field(name="from", description="First day (UTC), included.")
    to: dt.date = strawberry.field(description="Last day (UTC), included.")
    group_by: UsageGroupBy
    rows: list[UsageRow] = strawberry.field(
        description="DAY: every day of the range in order, empty ones included; MODEL and "
        "USER: buckets with requests, most charged tokens first."
    )
    total: UsageRow = strawberry.field(description="The whole range as one bucket.")

    @staticmethod
    def from_report(report: usage_stats.UsageReport) -> UsageStats:
        return UsageStats(
            from_=report.since,
            to=report.until,
            group_by=UsageGroupBy(report.group_by.value),
            rows=[UsageRow.from_row(row) for row in report.rows],
            total=UsageRow.from_row(report.total),
        )
