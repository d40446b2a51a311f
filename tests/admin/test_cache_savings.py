"""The admin pages show prompt caching: the dashboard what it saved, a dialog's and the
ledger's rows their cached tokens."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from asgi_lifespan import LifespanManager

from llm_gateway.app import create_app
from tests.admin_support import AdminClient
from tests.chat_support import finished, new_dialog, send
from tests.conftest import admin_settings
from tests.factories import price_for_worked_examples
from tests.fakes import DEFAULT_ANTHROPIC_KEY, AnthropicFake, Scenario, fake_anthropic
from tests.fakes.omnimap_back import OmnimapBack
from tests.support import GraphQLClient


@pytest.fixture
async def anthropic() -> AsyncIterator[AnthropicFake]:
    async with fake_anthropic() as fake:
        yield fake


@pytest.fixture
async def admin_app(
    database_url: str, omnimap: OmnimapBack, anthropic: AnthropicFake
) -> AsyncIterator[Any]:
    settings = admin_settings(
        database_url,
        omnimap,
        anthropic_api_key=DEFAULT_ANTHROPIC_KEY,
        anthropic_base_url=anthropic.base_url,
    )
    application = create_app(settings)
    async with LifespanManager(application):
        await price_for_worked_examples(application)
        yield application


async def test_the_dashboard_shows_what_caching_saved(
    staff_admin: AdminClient, admin_app: Any, anthropic: AnthropicFake
) -> None:
    anthropic.script(
        Scenario(
            prompt_tokens=3_000,
            cache_read_tokens=2_003,
            cache_write_tokens=800,
            completion_tokens=50,
            reasoning_tokens=20,
        )
    )
    gql = GraphQLClient(staff_admin.http)
    dialog_id = await new_dialog(gql, user=7, model="claude-3-opus")
    sent = (await send(gql, dialog_id, "Hello", user=7)).ok()["sendMessage"]
    answer = await finished(admin_app, sent["assistantMessage"]["id"])
    assert answer.cache_read_tokens == 2_003

    page = (await staff_admin.get("/admin/")).text
    saved = re.search(r'id="cache-saved-usd">\$([\d.]+)<', page)
    assert saved
    assert saved.group(1) == "0.02"  # $0.0240405
    assert re.search(r'id="cache-saved-tokens">1,603 tokens · 2,003 read, 800 written<', page)

    detail = (await staff_admin.get(f"/admin/dialogs/{dialog_id}")).text
    assert "3,000 in (2,003 cache read, 800 written) · 50 out (20 reasoning)" in detail
    ledger = (await staff_admin.get("/admin/transactions")).text
    assert "claude-3-opus · 3000 (2003 cache read, 800 written) + 50 (20 reasoning)" in ledger
