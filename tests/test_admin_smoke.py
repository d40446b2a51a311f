"""Every admin page on both backends (the embedded SQLite default included): each renders,
and a write through it lands. The pages' behaviour in detail is in tests/test_admin_*.py."""

from __future__ import annotations

from typing import Any

from llm_gateway.services import balances
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
