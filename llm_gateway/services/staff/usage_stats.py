"""Usage statistics for staff: requests, tokens, cost, errors and latency per bucket.

Computed from what records each generation's outcome (model actually used, tokens,
charged amount, USD cost, status, total time): assistant messages (source ``chat``, the
GraphQL flow) and ``/v1`` request records (source ``api``). A request is one of those
created in the range; its tokens count whatever its outcome, its charge and cost are what
the ledger took; an error is one whose status is ``failed``. Latency percentiles are over
``total_ms`` of ``complete`` ones and use linear interpolation between the closest ranks
(``percentile_cont``): SQL computes them on PostgreSQL, Python does on SQLite, with the
same formula, so both agree. What the prompt cache saved is ``usage_records``' per-record
saving summed (balance tokens rounded to the nearest whole one at the end).
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import (
    ARRAY,
    Float,
    Select,
    SQLColumnExpression,
    case,
    func,
    literal_column,
    select,
    type_coerce,
)
from sqlalchemy.engine import Result
from sqlalchemy.ext.asyncio import AsyncSession

from llm_gateway.enums import MessageStatus
from llm_gateway.services.staff.reports import date_bounds
from llm_gateway.services.staff.usage_records import GroupBy, Source, key_column, requests_in

MAX_SPAN_DAYS = 366
USD_PLACES = Decimal("0.00000001")
UNKNOWN_MODEL = "unknown"
P50, P95 = 0.5, 0.95


__all__ = ["GroupBy", "Source", "UsageReport", "UsageRow", "usage_stats"]


@dataclass(frozen=True, slots=True)
class UsageRow:
    """One bucket: a UTC day (ISO date), a model name, or a user id, as ``key``."""

    key: str
    requests: int
    prompt_tokens: int
    completion_tokens: int
    charged_tokens: int
    cost_usd: Decimal
    errors: int
    cache_read_tokens: int
    cache_write_tokens: int
    reasoning_tokens: int
    cache_saved_tokens: int
    """Balance tokens the prompt cache saved (negative while writes outweigh reads)."""
    cache_saved_usd: Decimal
    latency_p50_ms: float | None
    latency_p95_ms: float | None


@dataclass(frozen=True, slots=True)
class UsageReport:
    since: dt.date
    until: dt.date
    group_by: GroupBy
    rows: list[UsageRow]
    """DAY: every day of the range in order, empty days included; MODEL and USER: the
    buckets with requests, most charged tokens first (then by key)."""
    total: UsageRow
    """The whole range as one bucket (key ``total``); its percentiles are over all of it."""


Buckets = dict[str, UsageRow]


def percentile_cont(ordered: Sequence[int], fraction: float) -> float | None:
    """PostgreSQL's ``percentile_cont``: interpolate between the two nearest ranks."""
    if not ordered:
        return None
    position = fraction * (len(ordered) - 1)
    lower = math.floor(position)
    low, high = float(ordered[lower]), float(ordered[math.ceil(position)])
    return low + (high - low) * (position - lower)


@dataclass(slots=True)
class _Sums:
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    charged_tokens: int = 0
    cost_usd: Decimal = Decimal(0)
    errors: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cache_saved_tokens: Decimal = Decimal(0)
    cache_saved_usd: Decimal = Decimal(0)

    def add(self, other: _Sums) -> None:
        self.requests += other.requests
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.charged_tokens += other.charged_tokens
        self.cost_usd += other.cost_usd
        self.errors += other.errors
        self.cache_read_tokens += other.cache_read_tokens
        self.cache_write_tokens += other.cache_write_tokens
        self.reasoning_tokens += other.reasoning_tokens
        self.cache_saved_tokens += other.cache_saved_tokens
        self.cache_saved_usd += other.cache_saved_usd

    def row(self, key: str, p50: float | None, p95: float | None) -> UsageRow:
        return UsageRow(
            key=key,
            requests=self.requests,
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            charged_tokens=self.charged_tokens,
            cost_usd=self.cost_usd.quantize(USD_PLACES),
            errors=self.errors,
            cache_read_tokens=self.cache_read_tokens,
            cache_write_tokens=self.cache_write_tokens,
            reasoning_tokens=self.reasoning_tokens,
            cache_saved_tokens=int(self.cache_saved_tokens.to_integral_value(ROUND_HALF_UP)),
            cache_saved_usd=self.cache_saved_usd.quantize(USD_PLACES, ROUND_HALF_UP),
            latency_p50_ms=p50,
            latency_p95_ms=p95,
        )


def _sums_of(row: Any) -> _Sums:
    return _Sums(
        requests=int(row.requests),
        prompt_tokens=int(row.prompt_tokens),
        completion_tokens=int(row.completion_tokens),
        charged_tokens=int(row.charged_tokens),
        cost_usd=Decimal(row.cost_usd),
        errors=int(row.errors),
        cache_read_tokens=int(row.cache_read_tokens),
        cache_write_tokens=int(row.cache_write_tokens),
        reasoning_tokens=int(row.reasoning_tokens),
        # SQLite sums NUMERIC as binary floats: their text is what the sum meant.
        cache_saved_tokens=Decimal(str(row.cache_saved_tokens)),
        cache_saved_usd=Decimal(str(row.cache_saved_usd)),
    )


def _key_text(group_by: GroupBy, value: Any) -> str:
    if group_by is GroupBy.MODEL:
        return UNKNOWN_MODEL if value is None else str(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


async def usage_stats(
    session: AsyncSession,
    since: dt.date,
    until: dt.date,
    group_by: GroupBy,
    *,
    source: Source | None = None,
) -> UsageReport:
    """Usage from ``since`` to ``until`` (both UTC days included), in buckets; ``source``
    keeps only chat answers or only API requests."""
    start, end = date_bounds(since, until, max_days=MAX_SPAN_DAYS)
    assert start is not None
    dialect = session.get_bind().dialect.name
    rows = requests_in(start, end, source)
    key = key_column(group_by, dialect, rows)
    failed = rows.status == MessageStatus.FAILED
    sums = (
        func.count().label("requests"),
        func.coalesce(func.sum(rows.prompt_tokens), 0).label("prompt_tokens"),
        func.coalesce(func.sum(rows.completion_tokens), 0).label("completion_tokens"),
        func.coalesce(func.sum(rows.charged_tokens), 0).label("charged_tokens"),
        func.coalesce(func.sum(rows.cost_usd), 0).label("cost_usd"),
        func.coalesce(func.sum(case((failed, 1), else_=0)), 0).label("errors"),
        *(
            func.coalesce(func.sum(getattr(rows, name)), 0).label(name)
            for name in (
                "cache_read_tokens",
                "cache_write_tokens",
                "reasoning_tokens",
                "cache_saved_tokens",
                "cache_saved_usd",
            )
        ),
    )
    query = select(key.label("key"), *sums)
    if dialect == "postgresql":
        buckets, total = await _in_sql(session, query, key, group_by, rows)
    else:
        buckets, total = await _in_python(session, query, key, group_by, rows)
    return UsageReport(since, until, group_by, _ordered(group_by, buckets, since, until), total)


async def _in_sql(
    session: AsyncSession,
    query: Select[Any],
    key: SQLColumnExpression[Any],
    group_by: GroupBy,
    rows: Any,
) -> tuple[Buckets, UsageRow]:
    """PostgreSQL: percentiles and the total in the one aggregating statement."""
    # NULLs (the other statuses) are skipped.
    latency = case((rows.status == MessageStatus.COMPLETE, rows.total_ms))
    # Both percentiles from one sort per bucket (the array form of percentile_cont);
    # ROLLUP adds the whole range as one more row, in the same pass.
    percentiles = type_coerce(
        func.percentile_cont(literal_column(f"ARRAY[{P50}, {P95}]")).within_group(latency),
        ARRAY(Float),
    )
    result = await session.execute(
        query.add_columns(
            func.grouping(key).label("is_total"), percentiles.label("percentiles")
        ).group_by(func.rollup(key))
    )
    buckets: Buckets = {}
    total = _Sums().row("total", None, None)
    for row in result:
        p50, p95 = row.percentiles or (None, None)
        if row.is_total:
            total = _sums_of(row).row("total", p50, p95)
        else:
            text = _key_text(group_by, row.key)
            buckets[text] = _sums_of(row).row(text, p50, p95)
    return buckets, total


async def _in_python(
    session: AsyncSession,
    query: Select[Any],
    key: SQLColumnExpression[Any],
    group_by: GroupBy,
    rows: Any,
) -> tuple[Buckets, UsageRow]:
    """SQLite (no percentile_cont): sums in SQL, percentiles from the fetched latencies."""
    grouped = await session.execute(query.group_by(key))
    latencies: Result[Any] = await session.execute(
        query.with_only_columns(key.label("key"), rows.total_ms)
        .where(rows.status == MessageStatus.COMPLETE, rows.total_ms.is_not(None))
        .order_by(rows.total_ms)
    )
    by_key: dict[str, list[int]] = defaultdict(list)
    everything: list[int] = []
    for row in latencies:
        by_key[_key_text(group_by, row.key)].append(row.total_ms)
        everything.append(row.total_ms)
    buckets: Buckets = {}
    all_sums = _Sums()
    for row in grouped:
        text = _key_text(group_by, row.key)
        part = _sums_of(row)
        all_sums.add(part)
        ordered = by_key.get(text, [])
        buckets[text] = part.row(text, percentile_cont(ordered, P50), percentile_cont(ordered, P95))
    total = all_sums.row(
        "total", percentile_cont(everything, P50), percentile_cont(everything, P95)
    )
    return buckets, total


def _ordered(group_by: GroupBy, buckets: Buckets, since: dt.date, until: dt.date) -> list[UsageRow]:
    if group_by is GroupBy.DAY:
        return [
            buckets.get(day.isoformat()) or _Sums().row(day.isoformat(), None, None)
            for day in _days(since, until)
        ]

    def rank(row: UsageRow) -> tuple[int, int, str]:
        number = int(row.key) if group_by is GroupBy.USER else 0
        return (-row.charged_tokens, number, row.key)

    return sorted(buckets.values(), key=rank)


def _days(since: dt.date, until: dt.date) -> Iterable[dt.date]:
    for offset in range((until - since).days + 1):
        yield since + dt.timedelta(days=offset)  # never a day past ``until``: 9999-12-31
