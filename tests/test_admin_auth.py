"""Admin sign-in through omnimap-back, sessions, CSRF and cookie flags."""

from __future__ import annotations

from typing import Any

from llm_gateway.services import reports
from tests.admin_support import AdminClient, flashes
from tests.conftest import STAFF_LOGIN


async def _audit_actions(app: Any) -> list[tuple[str, int | None, Any]]:
    async with app.state.services.db.read() as session:
        page = await reports.list_audit_logs(
            session,
            first=50,
            after=None,
            actor_id=None,
            action=None,
            resource_type="admin_session",
            resource_id=None,
            since=None,
            until=None,
            max_page_size=100,
        )
    return [(row.action, row.actor_id, row.after) for _, row in page.items]


async def test_staff_signs_in_and_sees_the_dashboard(admin: AdminClient, admin_app: Any) -> None:
    response = await admin.login(*STAFF_LOGIN)
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/"
    cookie = response.headers["set-cookie"]
    assert "admin_session=" in cookie
    assert "httponly" in cookie.lower()
    assert "samesite=lax" in cookie.lower()
    assert "secure" in cookie.lower()
    assert "path=/admin" in cookie.lower()
    page = await admin.get("/admin/")
    assert page.status_code == 200
    assert "Dashboard" in page.text
    assert "Signed in as alice." in flashes(page.text)
    assert ("admin.login", 900, {"username": "alice"}) in await _audit_actions(admin_app)
