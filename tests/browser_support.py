"""Driving the admin in a real browser: Debian's Chromium under Playwright.

The ``browser`` and ``page`` fixtures are in ``tests/admin/conftest.py``; a module using
``page`` defines the ``server`` (a ``LiveServer``) it opens. Screenshots go to
``test-artifacts/browser/`` (not committed). Chromium is found at ``CHROMIUM_PATH``
(default Debian's ``/usr/bin/chromium``); without it these tests skip locally and fail
under ``.ci/run`` (which installs it).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from playwright.async_api import ConsoleMessage, Error, Page, expect

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
HAVE_CHROMIUM = Path(CHROMIUM).exists()
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "browser"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


async def sign_in(page: Page, username: str, password: str) -> None:
    await page.goto("/admin/")
    await expect(page).to_have_url(re.compile(r"/admin/login"))
    await page.get_by_label("Username").fill(username)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()


class ConsoleErrors:
    """Every error the page logged or threw (a CSP violation is one), from now on."""

    def __init__(self, page: Page) -> None:
        self.seen: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", self._thrown)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.seen.append(f"console: {message.text} ({message.location.get('url')})")

    def _thrown(self, error: Error) -> None:
        self.seen.append(f"uncaught: {error.message}")
