"""Admin pages for the dashboard and models, driven over HTTP as a browser would."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest

from llm_gateway.services.catalog import listing as catalog
from tests.admin_support import AdminClient, flashes
from tests.chat_support import finished, new_dialog, send
from tests.support import GraphQLClient

NEW_MODEL = {
    "name": "gpt-4o-mini",
    "display_name": "GPT-4o mini",
    "provider": "openai",
    "upstream_model": "gpt-4o-mini-2024-07-18",
    "context_window": "128000",
    "max_output_tokens": "16384",
    "prompt_price_per_1k": "0.00015",
    "completion_price_per_1k": "0.0006",
    "prompt_weight": "1",
    "completion_weight": "1",
    "enabled": "on",
}

# The admin only renders what the services return; the services run on both backends
# elsewhere. So these run on PostgreSQL (production), and tests/test_admin_smoke.py
# walks every page on SQLite too.
pytestmark = pytest.mark.postgres_only


async def _model(app: Any, name: str) -> Any:
    async with app.state.services.db.read() as session:
        return await catalog.get_model(session, name, include_disabled=True)


async def test_dashboard_totals_and_charts_follow_real_chats(
    staff_admin: AdminClient, admin_app: Any
) -> None:
    empty = await staff_admin.get("/admin/")
    assert "No answers in the last 30 days yet" in empty.text
    gql = GraphQLClient(staff_admin.http)
    dialog = await new_dialog(gql, user=7)
    sent = (await send(gql, dialog, "Hello there", user=7)).ok()
    answer = await finished(admin_app, sent["sendMessage"]["assistantMessage"]["id"])
    assert answer.status == "complete"

    page = await staff_admin.get("/admin/")
    assert page.status_code == 200
    tokens = re.search(r'id="total-tokens">([\d,]+)<', page.text)
    assert tokens
    assert answer.charged_tokens
    assert int(tokens.group(1).replace(",", "")) == answer.charged_tokens
    assert re.search(r'id="active-users">1<', page.text)
    assert re.search(r'id="total-errors">0<', page.text)
    # Charts are inline SVG, one bar per day (30) and one per model that answered.
    assert page.text.count("<svg") == 3
    assert f"mock: {answer.charged_tokens:,} tokens" in page.text
    assert "https://" not in page.text  # nothing loaded from elsewhere


async def test_create_model_from_the_form(staff_admin: AdminClient, admin_app: Any) -> None:
    response = await staff_admin.submit("/admin/models/new", "/admin/models/new", **NEW_MODEL)
    assert response.status_code == 303
    page = await staff_admin.get("/admin/models")
    assert "Model gpt-4o-mini created." in flashes(page.text)
    assert 'id="model-gpt-4o-mini"' in page.text
    row = await _model(admin_app, "gpt-4o-mini")
    assert row.upstream_model == "gpt-4o-mini-2024-07-18"
    assert row.prompt_price_per_1k == Decimal("0.00015")
    assert row.enabled
    # Users see it at once, through GraphQL.
    models = (await GraphQLClient(staff_admin.http)("{ models { name } }")).ok()["models"]
    assert "gpt-4o-mini" in [m["name"] for m in models]


async def test_invalid_model_keeps_the_form_and_says_why(
    staff_admin: AdminClient, admin_app: Any
) -> None:
    bad = {**NEW_MODEL, "max_output_tokens": "999999", "context_window": "1000"}
    response = await staff_admin.submit("/admin/models/new", "/admin/models/new", **bad)
    assert response.status_code == 400
    assert "flash-error" in response.text
    assert 'value="gpt-4o-mini-2024-07-18"' in response.text  # what was typed stays
    not_a_number = {**NEW_MODEL, "context_window": "lots"}
    response = await staff_admin.submit("/admin/models/new", "/admin/models/new", **not_a_number)
    assert "Context window must be a whole number." in response.text
    async with admin_app.state.services.db.read() as session:
        names = [m.name for m in await catalog.list_models(session, include_disabled=True)]
    assert "gpt-4o-mini" not in names


async def test_edit_model_then_reload(staff_admin: AdminClient, admin_app: Any) -> None:
    page = await staff_admin.get("/admin/models/gpt-4-turbo/edit")
    assert page.status_code == 200
    assert 'value="gpt-4-turbo"' in page.text or "gpt-4-turbo" in page.text
    fields = {
        **NEW_MODEL,
        "upstream_model": "gpt-4-turbo-2024-04-09",
        "completion_price_per_1k": "20",  # whole: Decimal("20").normalize() prints 2E+1
    }
    del fields["name"]
    response = await staff_admin.submit(
        "/admin/models/gpt-4-turbo/edit", "/admin/models/gpt-4-turbo/edit", **fields
    )
    assert response.status_code == 303
    row = await _model(admin_app, "gpt-4-turbo")
    assert row.completion_price_per_1k == Decimal("20")
    assert row.upstream_model == "gpt-4-turbo-2024-04-09"
    listed = await staff_admin.get("/admin/models")
    assert '<td class="num">0.00015 · 20</td>' in listed.text
    response = await staff_admin.submit("/admin/models", "/admin/models/reload")
    assert response.status_code == 303
    page = await staff_admin.get("/admin/models")
    assert any(text.startswith("Reloaded ") for text in flashes(page.text))


async def test_disable_and_enable_a_model(staff_admin: AdminClient, admin_app: Any) -> None:
    response = await staff_admin.submit(
        "/admin/models", "/admin/models/gpt-4-turbo/enabled", enabled="false", back="/admin/models"
    )
    assert response.status_code == 303
    assert not (await _model(admin_app, "gpt-4-turbo")).enabled
    assert "Model gpt-4-turbo disabled." in flashes((await staff_admin.get("/admin/models")).text)
    await staff_admin.submit(
        "/admin/models", "/admin/models/gpt-4-turbo/enabled", enabled="true", back="/admin/models"
    )
    assert (await _model(admin_app, "gpt-4-turbo")).enabled


async def test_disabling_the_default_model_is_refused_with_a_message(
    staff_admin: AdminClient, admin_app: Any
) -> None:
    response = await staff_admin.submit(
        "/admin/models", "/admin/models/mock/enabled", enabled="false", back="/admin/models"
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/models"
    page = await staff_admin.get("/admin/models")
    assert 'class="flash flash-error"' in page.text
    assert (await _model(admin_app, "mock")).enabled


async def test_unknown_model_is_a_404_page(staff_admin: AdminClient) -> None:
    page = await staff_admin.get("/admin/models/no-such-model/edit")
    assert page.status_code == 404
    assert "Sign out" in page.text
