"""The playground in a real browser: sign in, send, watch the answer stream, cancel one,
regenerate one, switch versions; with no console error (a CSP violation is one).

Answers come from the OpenAI fake on loopback (``gpt-4-turbo`` points at it), scripted per
test: its ``chunk_delay`` makes an answer slow enough to be seen growing and cancelled.
The built-in mock model answers the development-token user. Screenshots go to
``test-artifacts/browser/``.
"""

from __future__ import annotations

import itertools
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from playwright.async_api import Browser, Locator, Page, expect

from llm_gateway.db.models import Message
from llm_gateway.enums import MessageStatus
from tests.browser_support import ARTIFACTS, ConsoleErrors, sign_in
from tests.conftest import STAFF_LOGIN, admin_settings
from tests.fakes import DEFAULT_OPENAI_KEY, OpenAIFake, Scenario, fake_openai
from tests.fakes.omnimap_back import OmnimapBack
from tests.live import LiveServer, live_server
from tests.support import token

pytestmark = pytest.mark.postgres_only

# Every change of the newest answer's text, as the page showed it.
RECORD_ANSWER_TEXTS = """() => {
    window.answerTexts = [];
    const list = document.getElementById("pg-messages");
    new MutationObserver(() => {
        const answers = list.querySelectorAll(".pg-assistant .pg-text");
        const text = answers.length ? answers[answers.length - 1].textContent : null;
        if (text !== null && text !== window.answerTexts.at(-1)) window.answerTexts.push(text);
    }).observe(list, { subtree: true, childList: true, characterData: true });
}"""


@pytest.fixture
async def openai() -> AsyncIterator[OpenAIFake]:
    async with fake_openai() as fake:
        yield fake


@pytest.fixture
async def server(
    database_url: str, omnimap: OmnimapBack, openai: OpenAIFake
) -> AsyncIterator[LiveServer]:
    settings = admin_settings(
        database_url,
        omnimap,
        openai_api_key=DEFAULT_OPENAI_KEY,
        openai_base_url=openai.base_url,
        generation_flush_seconds=0.05,
    )
    async with live_server(settings) as live:
        yield live


def messages(page: Page) -> Locator:
    return page.get_by_role("list", name="Conversation").get_by_role("listitem")


async def open_playground(page: Page) -> None:
    await sign_in(page, *STAFF_LOGIN)
    await page.get_by_role("link", name="Playground", exact=True).click()
    await expect(page.get_by_role("heading", name="Playground", exact=True)).to_be_visible()
    await expect(page.locator("#pg-connection")).to_have_text("Connected as user 900 (staff).")


async def send(page: Page, text: str, model: str = "gpt-4-turbo") -> None:
    await page.get_by_label("Model").select_option(model)
    await page.get_by_label("Message").fill(text)
    await page.get_by_role("button", name="Send").click()


async def stored(server: LiveServer, message_id: str) -> Message:
    services: Any = server.app.state.services
    async with services.db.read() as session:
        row: Message | None = await session.get(Message, uuid.UUID(message_id))
    assert row is not None
    return row


async def test_an_answer_streams_in_then_shows_its_usage_and_the_balance(
    page: Page, server: LiveServer, openai: OpenAIFake
) -> None:
    reply = "Answers arrive piece by piece, and the playground shows every piece."
    openai.script(Scenario(text=reply, chunks=5, chunk_delay=0.15))
    errors = ConsoleErrors(page)
    await open_playground(page)
    balance = page.locator("#pg-balance")
    await expect(balance).to_have_text("10,000 tokens")
    await page.evaluate(RECORD_ANSWER_TEXTS)
    await send(page, "How do answers arrive?")

    answer = messages(page).last
    await expect(answer.locator(".pg-text")).to_have_text(reply)
    await expect(answer.locator(".badge")).to_have_count(0)  # no longer "streaming"
    usage = answer.locator(".pg-usage")
    await expect(usage).to_contain_text("11 prompt + 7 completion tokens · 18 charged")
    await expect(balance).to_have_text("9,982 tokens")  # balanceChanged, live
    await expect(messages(page).first).to_contain_text("How do answers arrive?")
    # The text grew: several partial texts, each a prefix of the next, before the whole.
    texts: list[str] = await page.evaluate("window.answerTexts")
    shown = [text for text in texts if text]
    assert shown[-1] == reply
    assert len(shown) >= 3, shown
    assert all(later.startswith(earlier) for earlier, later in itertools.pairwise(shown))
    # The first Send started a dialog, titled after the message and now the picked one.
    picked = page.get_by_label("Dialog").locator("option:checked")
    await expect(picked).to_have_text("How do answers arrive? · gpt-4-turbo")
    assert errors.seen == []


async def test_an_answer_cancelled_mid_stream_keeps_its_partial_text(
    page: Page, server: LiveServer, openai: OpenAIFake
) -> None:
    words = " ".join(f"word{number}" for number in range(40))
    openai.script(Scenario(text=words, chunks=40, chunk_delay=0.25))  # ten seconds in all
    errors = ConsoleErrors(page)
    await open_playground(page)
    await send(page, "Say forty words, slowly.")

    answer = messages(page).last
    await expect(answer.locator(".badge")).to_have_text("streaming")
    await expect(answer.locator(".pg-text")).to_have_text(re.compile(r"^word0 word1 word2"))
    await expect(page.get_by_role("button", name="Send")).to_be_disabled()
    await answer.get_by_role("button", name="Cancel").click()

    await expect(answer.locator(".badge")).to_have_text("cancelled")
    await expect(page.get_by_role("button", name="Send")).to_be_enabled()
    await expect(answer.get_by_role("button", name="Regenerate")).to_be_visible()
    partial = await answer.locator(".pg-text").inner_text()
    assert words.startswith(partial)
    assert partial != words
    row = await stored(server, (await answer.get_attribute("id") or "").removeprefix("message-"))
    assert row.status == MessageStatus.CANCELLED
    assert row.content == partial  # what the page shows is what was kept (and charged)
    assert errors.seen == []


async def test_regenerate_then_switch_between_the_answers(
    page: Page, server: LiveServer, openai: OpenAIFake
) -> None:
    openai.script(
        Scenario(text="The first answer."),
        Scenario(text="The second answer, regenerated.", chunks=3, chunk_delay=0.1),
    )
    errors = ConsoleErrors(page)
    await open_playground(page)
    await send(page, "Answer twice")
    first = messages(page).last
    await expect(first.locator(".pg-text")).to_have_text("The first answer.")

    await first.get_by_role("button", name="Regenerate").click()
    answer = messages(page).last
    await expect(answer.locator(".pg-text")).to_have_text("The second answer, regenerated.")
    await expect(answer.get_by_role("group", name="Versions")).to_contain_text("2 / 2")
    await expect(messages(page)).to_have_count(2)  # the new answer replaced the old one

    await answer.get_by_role("button", name="Previous version").click()
    await expect(answer.locator(".pg-text")).to_have_text("The first answer.")
    await expect(answer.get_by_role("group", name="Versions")).to_contain_text("1 / 2")
    await expect(answer.get_by_role("button", name="Previous version")).to_be_disabled()

    # The switch is the dialog's: picked again after a reload, it shows the same answer.
    await page.reload()
    await expect(page.locator("#pg-connection")).to_contain_text("Connected")
    await page.get_by_label("Dialog").select_option(label="Answer twice · gpt-4-turbo")
    await expect(answer.locator(".pg-text")).to_have_text("The first answer.")
    await answer.get_by_role("button", name="Next version").click()
    await expect(answer.locator(".pg-text")).to_have_text("The second answer, regenerated.")
    await expect(answer.get_by_role("group", name="Versions")).to_contain_text("2 / 2")
    assert errors.seen == []


async def test_landing_page_links_graphiql_the_admin_and_the_playground(page: Page) -> None:
    await page.goto("/")
    await expect(page.get_by_role("link", name="GraphiQL")).to_have_attribute("href", "/graphql")
    await expect(page.get_by_role("link", name="Admin")).to_have_attribute("href", "/admin/")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "landing.png"), full_page=True)
    await page.get_by_role("link", name="Playground").click()
    await expect(page).to_have_url(re.compile(r"/admin/login\?next=/admin/playground"))


async def test_a_development_token_user_gets_the_playground_only(
    browser: Browser, database_url: str, omnimap: OmnimapBack
) -> None:
    settings = admin_settings(database_url, omnimap, debug=True)
    async with live_server(settings) as live:
        context = await browser.new_context(base_url=live.base_url)
        context.set_default_timeout(10_000)
        tab = await context.new_page()
        errors = ConsoleErrors(tab)
        try:
            await tab.goto("/admin/playground")
            await tab.get_by_label("Access token").fill(token(5))
            await tab.get_by_role("button", name="Sign in with token").click()
            await expect(tab).to_have_url(re.compile(r"/admin/playground$"))
            nav = tab.get_by_role("navigation", name="Sections")
            await expect(nav.get_by_role("link")).to_have_text(["Playground"])
            await expect(tab.locator("#pg-connection")).to_have_text("Connected as user 5.")
            # The built-in mock model is the default: no provider key needed.
            await expect(tab.get_by_label("Model")).to_have_value("mock")
            await tab.get_by_label("Message").fill("Hello, mock")
            await tab.get_by_role("button", name="Send").click()
            answer = messages(tab).last
            await expect(answer.locator(".pg-text")).to_have_text(
                re.compile(r"^This is the built-in mock model\. You said: “Hello, mock”\.")
            )
            await expect(answer.locator(".pg-usage")).to_contain_text("charged")
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            await tab.screenshot(path=str(ARTIFACTS / "playground_dev_token.png"), full_page=True)
            assert errors.seen == []
            await tab.goto("/admin/models")
            await expect(tab.get_by_role("heading", name="Staff only")).to_be_visible()
        finally:
            await context.close()
