"""A user's API keys on their admin page: listed, revoked with one audited click."""

from __future__ import annotations

import datetime as dt
import html
import re
from typing import Any

import pytest

from llm_gateway.db.base import utcnow
from llm_gateway.errors import Unauthenticated
from llm_gateway.services.money import api_keys
from tests.admin_support import AdminClient, audit_entries, flashes

pytestmark = pytest.mark.postgres_only  # as the other admin pages; the smoke test has SQLite

USER = 901  # bob, on the fake omnimap-back
STAFF = 900


async def new_key(app: Any, name: str, **options: Any) -> tuple[str, Any]:
    async with app.state.services.db.transaction() as session:
        return await api_keys.create_api_key(session, USER, name=name, **options)


def key_row(page: str, key_id: object) -> str:
    found = re.search(rf'<tr id="key-{key_id}">(.*?)</tr>', page, re.S)
    assert found, f"no row for key {key_id}"
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", found.group(1))))


async def test_the_user_page_lists_keys_and_revokes_one(
    staff_admin: AdminClient, admin_app: Any
) -> None:
    raw, live = await new_key(admin_app, "ci runner", models=["mock"], daily_token_limit=5000)
    _, other = await new_key(admin_app, "laptop", expires_at=utcnow() + dt.timedelta(days=3))
    keys = admin_app.state.services.api_keys
    await keys.authenticate(raw)  # cached on this instance

    page = (await staff_admin.get(f"/admin/users/{USER}")).text
    row = key_row(page, live.id)
    for shown in ("ci runner", f"{live.prefix}…{live.last_four}", "mock", "5,000", "never"):
        assert shown in row
    assert "Revoke" in row
    assert "all models" in key_row(page, other.id)
    assert raw not in page

    action = f"/admin/api-keys/{live.id}/revoke"
    asked = await staff_admin.submit(f"/admin/users/{USER}", action)
    assert asked.status_code == 200
    assert "Revoke API key ci runner?" in html.unescape(asked.text)
    assert (await keys.authenticate(raw)).key_id == live.id  # nothing yet

    response = await staff_admin.submit(f"/admin/users/{USER}", action, confirm="yes")
    assert response.status_code == 303
    assert response.headers["location"] == f"/admin/users/{USER}#api-keys"
    page = (await staff_admin.get(f"/admin/users/{USER}")).text
    assert any("ci runner" in text and "revoked" in text for text in flashes(page))
    row = key_row(page, live.id)
    assert "revoked" in row
    assert "Revoke" not in row
    assert "Revoke" in key_row(page, other.id)

    with pytest.raises(Unauthenticated):
        await keys.authenticate(raw)  # at once, cache or not
    audits = await audit_entries(admin_app, action="api_key.revoke")
    assert [(a.actor_id, a.resource_id) for a in audits] == [(STAFF, str(live.id))]


async def test_a_revoke_without_the_form_token_changes_nothing(
    staff_admin: AdminClient, admin_app: Any
) -> None:
    raw, live = await new_key(admin_app, "ci runner")
    response = await staff_admin.http.post(
        f"/admin/api-keys/{live.id}/revoke", data={"confirm": "yes"}
    )
    assert response.status_code == 403
    assert (await admin_app.state.services.api_keys.authenticate(raw)).key_id == live.id
    assert await audit_entries(admin_app, action="api_key.revoke") == []


async def test_an_unknown_key_is_not_found(staff_admin: AdminClient) -> None:
    page = (await staff_admin.get(f"/admin/users/{USER}")).text
    assert "No API keys" in page
    for key_id in ("00000000-0000-0000-0000-000000000000", "not-a-uuid"):
        for answer in ("", "yes"):
            response = await staff_admin.submit(
                f"/admin/users/{USER}", f"/admin/api-keys/{key_id}/revoke", confirm=answer
            )
            assert response.status_code == 404
