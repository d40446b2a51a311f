"""Driving the admin UI over HTTP as a browser would: forms, cookies, CSRF tokens."""

from __future__ import annotations

import html
import re
from typing import Any

import httpx

from llm_gateway.db.models import AuditLog
from llm_gateway.services.staff import reports

CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')


def csrf_of(page: str) -> str:
    found = CSRF.search(page)
    assert found, "the page has no CSRF field"
    return html.unescape(found.group(1))


def flashes(page: str) -> list[str]:
    return [
        html.unescape(re.sub(r"<[^>]+>", "", text)).strip()
        for text in re.findall(r'<div class="flash[^"]*"[^>]*>(.*?)</div>', page, re.S)
    ]


class AdminClient:
    """An httpx client with a cookie jar, following the admin's forms."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def login(self, username: str, password: str) -> httpx.Response:
        page = await self.http.get("/admin/login")
        return await self.http.post(
            "/admin/login",
            data={"username": username, "password": password, "csrf_token": csrf_of(page.text)},
        )

    async def get(self, path: str, **params: Any) -> httpx.Response:
        return await self.http.get(path, params=params or None)

    async def submit(self, page_path: str, action: str, **fields: str) -> httpx.Response:
        """POST ``fields`` to ``action`` with the CSRF token of the page at ``page_path``."""
        page = await self.http.get(page_path)
        assert page.status_code == 200, page.text
        return await self.http.post(action, data={"csrf_token": csrf_of(page.text), **fields})


async def audit_entries(app: Any, **filters: Any) -> list[AuditLog]:
    """The audit log newest first (up to 100), filtered as ``reports.list_audit_logs``
    filters (``action``, ``actor_id``, ``resource_type``, ``resource_id``)."""
    wanted: dict[str, Any] = {
        "actor_id": None,
        "action": None,
        "resource_type": None,
        "resource_id": None,
        **filters,
    }
    async with app.state.services.db.read() as session:
        page = await reports.list_audit_logs(
            session, first=100, after=None, since=None, until=None, max_page_size=100, **wanted
        )
    return [row for _, row in page.items]
