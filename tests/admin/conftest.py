"""The browser fixtures of the admin's browser tests (helpers: ``tests/browser_support.py``)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, Page, async_playwright

from tests.browser_support import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, HAVE_CHROMIUM
from tests.conftest import REQUIRE_SERVICES
from tests.live import LiveServer


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not HAVE_CHROMIUM:
        message = f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
        if REQUIRE_SERVICES:
            pytest.fail(message)
        pytest.skip(message)
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def page(
    browser: Browser, server: LiveServer, request: pytest.FixtureRequest
) -> AsyncIterator[Page]:
    """A tab on the module's ``server``; its screenshot is saved when the test ends."""
    context = await browser.new_context(base_url=server.base_url)
    context.set_default_timeout(10_000)
    tab = await context.new_page()
    try:
        yield tab
    finally:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^\w.-]+", "_", request.node.name)
        await tab.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
        await context.close()
