"""The audit log, newest first: exact-match filters, UTC days, pages by cursor.

The same service call as GraphQL's ``auditLogs`` (``reports.list_audit_logs``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from llm_gateway.admin import forms
from llm_gateway.admin.user_lookup import page_size, user_id_in
from llm_gateway.admin.web import Staff, page_links, render, services_of, staff_page, user_names
from llm_gateway.db.models import AuditLog
from llm_gateway.errors import ValidationFailed
from llm_gateway.services.staff import reports

FILTERS = ("actor", "action", "resource_type", "resource_id", "from", "to")


@dataclass(frozen=True, slots=True)
class Entry:
    """One audit row as the page shows it."""

    row: AuditLog
    before: str | None
    after: str | None
    link: str | None


def compact(value: dict[str, Any] | None) -> str | None:
    """JSON on one line, keys sorted, non-ASCII kept readable."""
    if value is None:
        return None
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def _link(row: AuditLog) -> str | None:
    """The admin page of the resource, when there is one."""
    rid = row.resource_id
    kind = row.resource_type
    if kind == "system_config":
        return f"/admin/settings#setting-{quote(rid or '', safe='')}"
    if kind == "message" and row.before and isinstance(row.before.get("dialog_id"), str):
        return f"/admin/dialogs/{quote(row.before['dialog_id'], safe='')}"
    if not rid:
        return None
    pages = {
        "dialog": f"/admin/dialogs/{quote(rid, safe='')}",
        "balance": f"/admin/users/{quote(rid, safe='')}",
        "agent": f"/admin/agents/{quote(rid, safe='')}/edit",
        "model": f"/admin/models/{quote(rid)}/edit",
    }
    return pages.get(kind)


async def _list(request: Request, staff: Staff) -> Response:
    services = services_of(request)
    params = request.query_params
    chosen = {name: params.get(name, "").strip() for name in FILTERS}
    after = params.get("after") or None
    names = await user_names(request, staff)
    entries: list[Entry] = []
    next_cursor: str | None = None
    error: str | None = None
    try:
        forms.no_nul(chosen)
        actor_id: int | None = None
        if chosen["actor"]:
            actor_id = user_id_in(chosen["actor"])
            if actor_id is None:
                raise ValidationFailed("Actor id must be a positive whole number.")
        since, until = forms.date_range(chosen)
        async with services.db.read() as session:
            page = await reports.list_audit_logs(
                session,
                first=page_size(request),
                after=after,
                actor_id=actor_id,
                action=chosen["action"] or None,
                resource_type=chosen["resource_type"] or None,
                resource_id=chosen["resource_id"] or None,
                since=since,
                until=until,
                max_page_size=services.settings.graphql_max_page_size,
            )
        entries = [
            Entry(row, compact(row.before), compact(row.after), _link(row)) for _, row in page.items
        ]
        next_cursor = page.items[-1][0] if page.has_next_page else None
    except ValidationFailed as exc:
        error = exc.message
    filtered = {name: value for name, value in chosen.items() if value}
    return render(
        request,
        "audit.html",
        {
            "title": "Audit log",
            "chosen": chosen,
            "filtered": bool(filtered),
            "entries": entries,
            "names": names,
            "error": error,
            **page_links("/admin/audit", filtered, after=after, next_cursor=next_cursor),
        },
        staff=staff,
        status_code=400 if error else 200,
    )


routes = [Route("/audit", staff_page(_list), methods=["GET"])]
