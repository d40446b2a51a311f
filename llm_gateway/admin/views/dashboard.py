"""The dashboard: the last 30 days of usage, per day and per model, and their totals."""

from __future__ import annotations

import datetime as dt

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from llm_gateway.admin.charts import Bar, column_chart, row_chart
from llm_gateway.admin.web import Staff, render, services_of, staff_page
from llm_gateway.services.staff import usage_stats
from llm_gateway.services.staff.usage_stats import GroupBy

DAYS = 30


async def _dashboard(request: Request, staff: Staff) -> Response:
    until = dt.datetime.now(dt.UTC).date()
    since = until - dt.timedelta(days=DAYS - 1)
    async with services_of(request).db.read() as session:
        by_day = await usage_stats.usage_stats(session, since, until, GroupBy.DAY)
        by_model = await usage_stats.usage_stats(session, since, until, GroupBy.MODEL)
        by_user = await usage_stats.usage_stats(session, since, until, GroupBy.USER)
        by_source = await usage_stats.usage_stats(session, since, until, GroupBy.SOURCE)
    total = by_day.total
    day_tokens = [
        Bar(row.key, row.charged_tokens, f"${row.cost_usd:.4f}, {row.requests} requests")
        for row in by_day.rows
    ]
    day_requests = [Bar(row.key, row.requests, f"{row.errors} failed") for row in by_day.rows]
    model_tokens = [
        Bar(row.key, row.charged_tokens, f"${row.cost_usd:.4f}, {row.requests} requests")
        for row in by_model.rows
    ]
    return render(
        request,
        "dashboard.html",
        {
            "title": "Dashboard",
            "since": since,
            "until": until,
            "total": total,
            "active_users": len(by_user.rows),
            "models": by_model.rows,
            "sources": by_source.rows,
            "tokens_chart": column_chart(
                day_tokens, chart_id="day-tokens", title="Charged tokens per day", unit="tokens"
            ),
            "requests_chart": column_chart(
                day_requests, chart_id="day-requests", title="Requests per day", unit="requests"
            ),
            "models_chart": row_chart(
                model_tokens,
                chart_id="model-tokens",
                title="Charged tokens per model",
                unit="tokens",
            ),
        },
        staff=staff,
    )


routes = [Route("/", staff_page(_dashboard), methods=["GET"])]
