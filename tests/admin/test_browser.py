"""The admin UI in a real browser: Debian's Chromium driven by Playwright.

The gateway runs as a real server on loopback (PostgreSQL, as in production, DEBUG off),
with the fake omnimap-back answering its logins. Every test leaves a screenshot in
``test-artifacts/browser/`` (not committed); the fixtures are in ``conftest.py``, the
helpers in ``tests/browser_support.py``.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect

from llm_gateway.services.catalog import listing as catalog
from llm_gateway.services.money import balances
from llm_gateway.services.staff import runtime_settings as config
from tests.admin_support import audit_entries
from tests.browser_support import ARTIFACTS, sign_in
from tests.conftest import STAFF_LOGIN, admin_settings
from tests.fakes.omnimap_back import OmnimapBack
from tests.live import LiveServer, live_server

pytestmark = pytest.mark.postgres_only


@pytest.fixture
async def server(database_url: str, omnimap: OmnimapBack) -> AsyncIterator[LiveServer]:
    async with live_server(admin_settings(database_url, omnimap)) as live:
        yield live


async def test_staff_signs_in_and_sees_the_dashboard(page: Page) -> None:
    await sign_in(page, *STAFF_LOGIN)
    await expect(page.get_by_role("heading", name="Dashboard", exact=True)).to_be_visible()
    await expect(page.get_by_role("status")).to_have_text("Signed in as alice.")
    await expect(page.get_by_role("navigation", name="Sections")).to_be_visible()
    # No answers yet: both per-day charts (empty days), the per-model chart says it is empty.
    assert await page.locator("svg[role=img]").count() == 2
    await expect(page.get_by_text("No model has answered in the last 30 days.")).to_be_visible()
    cookies = await page.context.cookies()
    session = next(c for c in cookies if c["name"] == "admin_session")
    assert session["httpOnly"]
    assert session["sameSite"] == "Lax"
    assert session["secure"]


WIDER_THAN_SCREEN = """() => {
    const width = document.documentElement.clientWidth;
    if (document.documentElement.scrollWidth <= width) return [];
    const wide = [...document.querySelectorAll("body *")]
        .filter((el) => el.getBoundingClientRect().right > width + 1)
        .map((el) => `${el.tagName}.${el.className} ${el.getBoundingClientRect().right}`);
    return [`page ${document.documentElement.scrollWidth}px wide`, ...wide.slice(0, 6)];
}"""


async def test_admin_pages_fit_a_phone(browser: Browser, server: LiveServer) -> None:
    context = await browser.new_context(
        base_url=server.base_url, viewport={"width": 390, "height": 844}, is_mobile=True
    )
    phone = await context.new_page()
    try:
        await sign_in(phone, *STAFF_LOGIN)
        await expect(phone.get_by_role("heading", name="Dashboard", exact=True)).to_be_visible()
        for path in ("/admin/", "/admin/models"):
            await phone.goto(path)
            wide = await phone.evaluate(WIDER_THAN_SCREEN)
            assert wide == [], f"{path} scrolls sideways on a phone: {wide}"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        await phone.screenshot(path=str(ARTIFACTS / "phone_models.png"), full_page=True)
    finally:
        await context.close()


async def test_keyboard_reaches_the_login_form(page: Page) -> None:
    await page.goto("/admin/login")
    await expect(page.get_by_label("Username")).to_be_focused()  # autofocus
    await page.keyboard.type(STAFF_LOGIN[0])
    await page.keyboard.press("Tab")
    await expect(page.get_by_label("Password")).to_be_focused()
    await page.keyboard.type(STAFF_LOGIN[1])
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="Dashboard", exact=True)).to_be_visible()


async def test_non_staff_login_is_refused(page: Page) -> None:
    await sign_in(page, "bob", "bob-password")
    await expect(page.get_by_role("alert")).to_contain_text("not a staff account")
    await expect(page).to_have_url(re.compile(r"/admin/login"))
    await page.goto("/admin/models")
    await expect(page).to_have_url(re.compile(r"/admin/login\?next="))


async def test_wrong_password_is_a_message_on_the_form(page: Page) -> None:
    await sign_in(page, STAFF_LOGIN[0], "wrong")
    await expect(page.get_by_role("alert")).to_have_text("Wrong username or password.")
    await expect(page.get_by_label("Username")).to_have_value(STAFF_LOGIN[0])


async def test_model_edit_then_reload(page: Page, server: LiveServer) -> None:
    await sign_in(page, *STAFF_LOGIN)
    await page.get_by_role("link", name="Models", exact=True).click()
    await page.get_by_role("link", name="gpt-4-turbo", exact=True).click()
    await page.get_by_label("Completion price, USD per 1k").fill("0.025")
    await page.get_by_label("Display name").fill("GPT-4 Turbo (edited)")
    await page.get_by_role("button", name="Save").click()
    await expect(page.get_by_role("status")).to_have_text("Model gpt-4-turbo saved.")
    row = page.locator("#model-gpt-4-turbo")
    await expect(row).to_contain_text("GPT-4 Turbo (edited)")
    await expect(row).to_contain_text("0.025")
    await page.get_by_role("button", name="Reload models on every instance").click()
    await expect(page.get_by_role("status")).to_contain_text("Reloaded")
    services: Any = server.app.state.services
    async with services.db.read() as session:
        model = await catalog.get_model(session, "gpt-4-turbo", include_disabled=True)
    assert str(model.completion_price_per_1k.normalize()) == "0.025"


async def test_post_without_csrf_token_is_refused(page: Page, server: LiveServer) -> None:
    await sign_in(page, *STAFF_LOGIN)
    await page.goto("/admin/models")
    # A form posted from elsewhere carries no token: strip it, then submit.
    await page.evaluate(
        """() => {
            const form = document.querySelector('form[action="/admin/models/reload"]');
            form.querySelector('input[name="csrf_token"]').remove();
        }"""
    )
    await page.get_by_role("button", name="Reload models on every instance").click()
    await expect(page.get_by_role("heading", name="Form expired")).to_be_visible()
    await expect(page.get_by_text("security token is missing")).to_be_visible()
    # Refused before anything ran.
    assert await audit_entries(server.app, action="model.reload") == []
    # The same button with its token works.
    await page.goto("/admin/models")
    await page.get_by_role("button", name="Reload models on every instance").click()
    await expect(page.get_by_role("status")).to_contain_text("Reloaded")


async def test_top_up_shows_in_ledger_and_balance(page: Page, server: LiveServer) -> None:
    services: Any = server.app.state.services
    async with services.db.transaction() as session:
        await balances.ensure_account(session, 901, services.policy)  # bob has used the gateway
    await sign_in(page, *STAFF_LOGIN)
    await page.get_by_role("link", name="Users", exact=True).click()
    await page.get_by_label("User id or username").fill("bob")
    await page.keyboard.press("Enter")
    await page.get_by_role("link", name=re.compile(r"^bob")).first.click()
    await expect(page.get_by_role("heading", level=1)).to_contain_text("bob")
    before = int((await page.locator("#balance").inner_text()).replace(",", ""))
    await page.get_by_label("Tokens to add").fill("2500")
    await page.locator("#topup-reason").fill("Conference prize")
    await page.get_by_role("button", name="Top up", exact=True).click()
    await expect(page.get_by_role("status")).to_contain_text("2,500")
    await expect(page.locator("#balance")).to_have_text(f"{before + 2500:,}")
    newest = page.locator("table tbody tr").first
    await expect(newest).to_contain_text("topup")
    await expect(newest).to_contain_text("+2,500")
    await expect(newest).to_contain_text("Conference prize")
    await expect(newest).to_contain_text("alice")  # who did it, by name
    async with services.db.read() as session:
        view = await balances.balance_of(session, 901, services.policy)
    assert view.balance == before + 2500


async def test_secret_is_masked_after_saving(page: Page, server: LiveServer) -> None:
    secret = "sk-live-0123456789abcdefSECRET"
    await sign_in(page, *STAFF_LOGIN)
    await page.get_by_role("link", name="Settings", exact=True).click()
    card = page.locator("#setting-OPENAI_API_KEY")
    await card.get_by_label("Value for OPENAI_API_KEY").fill(secret)
    await card.get_by_role("button", name="Save OPENAI_API_KEY").click()
    await expect(page.get_by_role("status")).to_be_visible()
    card = page.locator("#setting-OPENAI_API_KEY")
    await expect(card.locator(".setting-value")).to_be_visible()
    shown = await card.locator(".setting-value").inner_text()
    assert secret not in shown
    assert secret not in await page.content()  # not in any attribute either
    # Rotating replaces it, still masked; the gateway uses the new value.
    await card.get_by_label("New value (rotate) for OPENAI_API_KEY").fill(secret + "-2")
    await card.get_by_role("button", name="Rotate OPENAI_API_KEY").click()
    await expect(page.get_by_role("status")).to_be_visible()
    assert secret not in await page.content()
    services: Any = server.app.state.services
    async with services.db.read() as session:
        stored = await config.overrides(session, services.cipher)
    assert stored["OPENAI_API_KEY"] == secret + "-2"


async def test_every_admin_page_fits_a_phone(browser: Browser, server: LiveServer) -> None:
    context = await browser.new_context(
        base_url=server.base_url, viewport={"width": 390, "height": 844}, is_mobile=True
    )
    phone = await context.new_page()
    try:
        await sign_in(phone, *STAFF_LOGIN)
        for path in (
            "/admin/agents",
            "/admin/users",
            "/admin/users/900",
            "/admin/transactions",
            "/admin/dialogs",
            "/admin/audit",
            "/admin/settings",
            "/admin/playground",
        ):
            await phone.goto(path)
            assert await phone.evaluate(WIDER_THAN_SCREEN) == [], path
    finally:
        await context.close()
