"""Every admin page on both backends (the embedded SQLite default included): each renders,
and a write through it lands. The pages' behaviour in detail is in tests/test_admin_*.py."""

from __future__ import annotations

import base64
import html
import json
import re
from typing import Any

from llm_gateway.services.money import balances
from tests.admin_support import AdminClient, flashes
from tests.chat_support import finished, new_dialog, send
from tests.support import GraphQLClient

PAGES = (
    "/admin/",
    "/admin/models",
    "/admin/models/new",
    "/admin/models/gpt-4-turbo/edit",
    "/admin/agents",
    "/admin/agents/new",
    "/admin/users",
    "/admin/users/7",
    "/admin/transactions",
    "/admin/dialogs",
    "/admin/audit",
    "/admin/settings",
    "/admin/graphiql",
    "/admin/playground",
)


async def test_every_page_renders_and_a_top_up_lands(
    staff_admin: AdminClient, admin_app: Any
) -> None:
    gql = GraphQLClient(staff_admin.http)
    dialog = await new_dialog(gql, user=7)
    sent = (await send(gql, dialog, "Hello", user=7)).ok()["sendMessage"]
    await finished(admin_app, sent["assistantMessage"]["id"])
    for path in (*PAGES, f"/admin/dialogs/{dialog}"):
        page = await staff_admin.get(path)
        assert page.status_code == 200, path
        assert "Sign out" in page.text, path

    before = await _balance(admin_app, 7)
    response = await staff_admin.submit(
        "/admin/users/7",
        "/admin/users/7/topup",
        amount="1000",
        reason="smoke",
        back="/admin/users/7",
    )
    assert response.status_code == 303
    assert any("1,000" in text for text in flashes((await staff_admin.get("/admin/users/7")).text))
    assert await _balance(admin_app, 7) == before + 1000


async def _balance(app: Any, user_id: int) -> int:
    services = app.state.services
    async with services.db.read() as session:
        view = await balances.existing_balance(session, user_id, services.policy)
    return view.balance


def _cursor(*parts: Any) -> str:
    raw = json.dumps(list(parts)).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


BAD_CURSORS = (
    _cursor("²"),
    _cursor("1" * 25),
    _cursor("0001-01-01T00:00:00+14:00", "1"),
    _cursor("9999-12-31T23:59:59-14:00", "1"),
    base64.urlsafe_b64encode(b"[" * 3000).decode(),
    "x" * 5000,
)


async def test_a_forged_cursor_is_an_error_message_never_a_crash(
    staff_admin: AdminClient, admin_app: Any
) -> None:
    gql = GraphQLClient(staff_admin.http)
    dialog = await new_dialog(gql, user=7)
    sent = (await send(gql, dialog, "Hello", user=7)).ok()["sendMessage"]
    await finished(admin_app, sent["assistantMessage"]["id"])
    for path in (
        "/admin/users",
        "/admin/transactions",
        "/admin/dialogs",
        "/admin/audit",
        f"/admin/dialogs/{dialog}",
        "/admin/users/7",
    ):
        for cursor in BAD_CURSORS:
            page = await staff_admin.get(path, after=cursor)
            assert page.status_code in (200, 400), (path, cursor[:30], page.status_code)
            assert "Invalid cursor." in page.text, (path, cursor[:30])
    for cursor in BAD_CURSORS:
        result = await gql(
            "query($after: String) { dialogs(after: $after) { edges { node { id } } } }",
            {"after": cursor},
            user=7,
        )
        assert result.codes == ["VALIDATION_FAILED"], cursor[:30]


async def test_a_context_window_past_the_column_is_a_form_error(
    staff_admin: AdminClient,
) -> None:
    page = await staff_admin.get("/admin/models/gpt-4-turbo/edit")
    fields = dict(re.findall(r'name="(\w+)" type="(?:text|number)" value="([^"]*)"', page.text))
    fields.update(provider="openai", enabled="on", context_window=str(2**31))
    response = await staff_admin.submit(
        "/admin/models/gpt-4-turbo/edit", "/admin/models/gpt-4-turbo/edit", **fields
    )
    assert response.status_code == 400
    assert "contextWindow must be between 1 and 2,147,483,647." in html.unescape(response.text)
