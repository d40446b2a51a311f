"""What usage statistics count: every generation's record, chat answers and API requests.

Both kinds carry the same columns (model, user, status, tokens, charge, cost, total time);
``requests_in`` puts them in one relation with a ``source`` column, so the statistics
group and filter them alike. Each record also says what the prompt cache saved on it
(``cache_saved_tokens``, ``cache_saved_usd``): its cache reads at the prompt's weight and
price less their own, less what its cache writes cost beyond the prompt's, at the
catalog's current prices of the model that answered (nothing for a model since deleted).
"""

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Date,
    Numeric,
    SQLColumnExpression,
    cast,
    func,
    literal,
    literal_column,
    select,
    true,
    type_coerce,
    union_all,
)

from llm_gateway.db.models import ApiRequest, Message, Model
from llm_gateway.enums import Role

PER_TOKEN = Decimal("0.001")
"""Prices are per 1,000 tokens."""
SAVINGS = Numeric(30, 12)


class GroupBy(enum.Enum):
    DAY = "day"
    MODEL = "model"
    USER = "user"
    SOURCE = "source"


class Source(enum.Enum):
    """Where a request came in: a GraphQL chat answer or an OpenAI-compatible API call."""

    CHAT = "chat"
    API = "api"


def key_column(group_by: GroupBy, dialect: str, rows: Any) -> SQLColumnExpression[Any]:
    if group_by is GroupBy.MODEL:
        return rows.model_name  # type: ignore[no-any-return]
    if group_by is GroupBy.USER:
        return rows.user_id  # type: ignore[no-any-return]
    if group_by is GroupBy.SOURCE:
        return rows.source  # type: ignore[no-any-return]
    if dialect == "postgresql":
        # The UTC day whatever the session's TimeZone; a literal (not a bound parameter)
        # so GROUP BY and SELECT hold the very same expression.
        return cast(rows.created_at.op("AT TIME ZONE")(literal_column("'UTC'")), Date)
    return func.date(rows.created_at)  # SQLite keeps naive UTC text


def requests_in(start: dt.datetime, end: dt.datetime | None, source: Source | None) -> Any:
    """Every generation's record in the range, chat answers and API requests alike."""
    columns = (
        "created_at",
        "model_name",
        "user_id",
        "status",
        "prompt_tokens",
        "completion_tokens",
        "charged_tokens",
        "cost_usd",
        "total_ms",
        "cache_read_tokens",
        "cache_write_tokens",
        "reasoning_tokens",
    )
    chat = (
        select(
            *(getattr(Message, c) for c in columns),
            *_cache_savings(Message),
            literal(Source.CHAT.value).label("source"),
        )
        .outerjoin(Model, Model.name == Message.model_name)
        .where(
            # A literal, so the planners can match the partial index on assistant rows.
            Message.role == literal_column(f"'{Role.ASSISTANT.value}'"),
            Message.created_at >= start,
            # No end past the calendar's last day (``date_bounds`` gives None there).
            Message.created_at < end if end is not None else true(),
        )
    )
    api = (
        select(
            *(getattr(ApiRequest, c) for c in columns),
            *_cache_savings(ApiRequest),
            literal(Source.API.value).label("source"),
        )
        .outerjoin(Model, Model.name == ApiRequest.model_name)
        .where(
            ApiRequest.created_at >= start,
            ApiRequest.created_at < end if end is not None else true(),
        )
    )
    parts = [
        part
        for part, name in ((chat, Source.CHAT), (api, Source.API))
        if source is None or source is name
    ]
    return (union_all(*parts) if len(parts) > 1 else parts[0]).subquery("requests").c


def _cache_savings(records: type[Message] | type[ApiRequest]) -> tuple[Any, Any]:
    """What the cache saved on each record, in balance tokens and in USD (may be negative:
    writes cost more than they saved until they are read)."""
    read = func.coalesce(records.cache_read_tokens, 0)
    written = func.coalesce(records.cache_write_tokens, 0)
    tokens = read * (Model.prompt_weight - Model.cache_read_weight) - written * (
        Model.cache_write_weight - Model.prompt_weight
    )
    usd = (
        read * (Model.prompt_price_per_1k - Model.cache_read_price_per_1k)
        - written * (Model.cache_write_price_per_1k - Model.prompt_price_per_1k)
    ) * literal(PER_TOKEN, Numeric(4, 3))  # never SQLite's integer division
    # Typed wide enough that no result processor rounds the sums (SQLite's would, to the
    # literal's three places).
    return (
        type_coerce(tokens, SAVINGS).label("cache_saved_tokens"),
        type_coerce(usd, SAVINGS).label("cache_saved_usd"),
    )
