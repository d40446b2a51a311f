"""Admin pages for users and balances, transactions and agents, driven over HTTP."""

from __future__ import annotations

import datetime as dt
import html
import re
from typing import Any

import pytest

from llm_gateway.services.catalog import listing as catalog
from llm_gateway.services.money import balances, ledger
from llm_gateway.services.money.balances import BalanceView
from llm_gateway.services.staff.audit import Actor
from tests.admin_support import AdminClient, audit_entries, csrf_of, flashes
from tests.fakes.omnimap_back import OmnimapBack
from tests.platform.test_query_counts import count_statements

STAFF = Actor(user_id=900)


# -- building and reading state through the services ----------------------------------------

# The admin only renders what the services return; the services run on both backends
# elsewhere. So these run on PostgreSQL (production), and tests/test_admin_smoke.py
# walks every page on SQLite too.
pytestmark = pytest.mark.postgres_only


async def open_accounts(app: Any, *user_ids: int) -> None:
    """Accounts as a first request opens them: the initial grant, in the ledger."""
    services = app.state.services
    async with services.db.transaction() as session:
        for user_id in user_ids:
            await balances.balance_of(session, user_id, services.policy)


async def change(
    app: Any, user_id: int, amount: int, *, kind: str = "topup", times: int = 1
) -> None:
    services = app.state.services
    async with services.db.transaction() as session:
        for n in range(times):
            await ledger.change_balance(
                session,
                STAFF,
                user_id,
                amount,
                kind=kind,
                reason=f"seed {n}",
                idempotency_key=None,
                policy=services.policy,
            )


async def balance(app: Any, user_id: int) -> BalanceView:
    services = app.state.services
    async with services.db.read() as session:
        return await balances.existing_balance(session, user_id, services.policy)


async def ledger_rows(app: Any, user_id: int) -> list[Any]:
    services = app.state.services
    async with services.db.read() as session:
        page = await ledger.list_transactions(
            session, user_id, first=100, after=None, kind=None, max_page_size=100
        )
    return [row for _, row in page.items]


async def audit_rows(app: Any, action: str) -> list[Any]:
    return list(await audit_entries(app, action=action))


async def assert_ledger_adds_up(app: Any, user_id: int) -> None:
    rows = await ledger_rows(app, user_id)
    assert (await balance(app, user_id)).balance == sum(row.amount for row in rows)


def row_ids(page: str, prefix: str) -> list[str]:
    return re.findall(rf'<tr id="{prefix}-(\d+)"', page)


def row_of(page: str, row_id: str) -> str:
    found = re.search(rf'<tr id="{row_id}">(.*?)</tr>', page, re.S)
    assert found, f"no row {row_id}"
    return html.unescape(re.sub(r"<[^>]+>", " ", found.group(1)))


def link(page: str, text: str) -> str | None:
    found = re.search(rf'<a href="([^"]+)">{re.escape(text)}</a>', page)
    return html.unescape(found.group(1)) if found else None


def key_of(page: str, form_action: str) -> str:
    form = re.search(
        rf'<form method="post" action="{re.escape(form_action)}".*?</form>', page, re.S
    )
    assert form, form_action
    found = re.search(r'name="idempotency_key" value="([^"]+)"', form.group(0))
    assert found
    return found.group(1)


# -- users ------------------------------------------------------------------------------------


async def test_users_list_shows_usernames_from_omnimap(
    staff_admin: AdminClient, admin_app: Any
) -> None:
    await open_accounts(admin_app, 901, 42)
    page = await staff_admin.get("/admin/users")
    assert page.status_code == 200
    assert row_ids(page.text, "user") == ["42", "901"]
    bob = row_of(page.text, "user-901")
    assert "bob" in bob
    assert "10,000" in bob  # the initial balance
    assert "no limit" in bob
    assert row_of(page.text, "user-42").split()[:1] == ["#42"]  # not on omnimap-back: an id
    assert 'href="/admin/users/901"' in page.text
    assert 'id="names-unavailable"' not in page.text


async def test_users_list_shows_ids_when_omnimap_does_not_answer(
    staff_admin: AdminClient, admin_app: Any, omnimap: OmnimapBack
) -> None:
    omnimap.list_down = True
    await open_accounts(admin_app, 901)
    page = await staff_admin.get("/admin/users")
    assert page.status_code == 200
    assert "bob" not in row_of(page.text, "user-901")
    assert "#901" in row_of(page.text, "user-901")
    assert 'id="names-unavailable"' in page.text
    detail = await staff_admin.get("/admin/users/901")
    assert detail.status_code == 200
    assert "User #901" in detail.text


async def test_search_by_id_and_by_username(
    staff_admin: AdminClient, admin_app: Any, omnimap: OmnimapBack
) -> None:
    omnimap.add(902, "roberta", "pw")
    await open_accounts(admin_app, 901, 902, 42)
    by_id = await staff_admin.get("/admin/users", q="42")
    assert row_ids(by_id.text, "user") == ["42"]
    by_name = await staff_admin.get("/admin/users", q="BOB")
    assert row_ids(by_name.text, "user") == ["901"]
    by_part = await staff_admin.get("/admin/users", q="ob")
    assert row_ids(by_part.text, "user") == ["901", "902"]
    # alice is on omnimap-back but has never used the gateway: offered, not listed.
    alice = await staff_admin.get("/admin/users", q="ali")
    assert row_ids(alice.text, "user") == []
    assert 'id="unopened"' in alice.text
    assert 'href="/admin/users/900"' in alice.text
    nobody = await staff_admin.get("/admin/users", q="zed")
    assert "No user matches “zed”." in nobody.text
    assert (await staff_admin.get("/admin/users", q="7")).text.count('class="empty"') == 1


async def test_username_search_reads_every_match_at_once(
    staff_admin: AdminClient, admin_app: Any, omnimap: OmnimapBack
) -> None:
    robots = [1000 + n for n in range(40)]
    for user_id in robots:
        omnimap.add(user_id, f"robot{user_id}", "pw")
    await open_accounts(admin_app, 901, *robots)
    await staff_admin.get("/admin/users", q="bob")  # caches warmed on the first request

    with count_statements(admin_app) as one:
        bob = await staff_admin.get("/admin/users", q="bob")
    with count_statements(admin_app) as forty:
        found = await staff_admin.get("/admin/users", q="robot")

    assert row_ids(bob.text, "user") == ["901"]
    assert row_ids(found.text, "user") == [str(user_id) for user_id in robots]
    assert all("10,000" in row_of(found.text, f"user-{user_id}") for user_id in robots)
    assert len(one) == len(forty), (one, forty)


async def test_users_list_pages_and_says_when_empty(
    staff_admin: AdminClient, admin_app: Any
) -> None:
    empty = await staff_admin.get("/admin/users")
    assert "No users yet" in empty.text
    await open_accounts(admin_app, *range(1, 31))
    first = await staff_admin.get("/admin/users")
    assert row_ids(first.text, "user") == [str(n) for n in range(1, 26)]
    assert link(first.text, "« First page") is None
    following = link(first.text, "Next page »")
    assert following
    second = await staff_admin.get(following)
    assert row_ids(second.text, "user") == [str(n) for n in range(26, 31)]
    assert link(second.text, "Next page »") is None
    assert link(second.text, "« First page") == "/admin/users"


async def test_top_up_with_a_reason_lands_in_the_ledger(
    staff_admin: AdminClient, admin_app: Any
) -> None:
    await open_accounts(admin_app, 901)
    page = await staff_admin.get("/admin/users/901")
    assert page.status_code == 200
    response = await staff_admin.http.post(
        "/admin/users/901/topup",
        data={
            "csrf_token": csrf_of(page.text),
            "back": "/admin/users/901",
            "idempotency_key": key_of(page.text, "/admin/users/901/topup"),
            "amount": "1,500",
            "reason": "Conference credit",
        },
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/users/901"
    after = await staff_admin.get("/admin/users/901")
    assert "Added 1,500 tokens to bob (#901). Balance now 11,500." in flashes(after.text)
    assert re.search(r'id="balance">11,500<', after.text)
    newest = row_ids(after.text, "tx")[0]
    shown = row_of(after.text, f"tx-{newest}")
    assert "topup" in shown
    assert "+1,500" in shown
    assert "Conference credit" in shown
    assert "alice" in shown  # who did it

    assert (await balance(admin_app, 901)).balance == 11_500
    top_up = (await ledger_rows(admin_app, 901))[0]
    assert (top_up.kind, top_up.amount, top_up.reason, top_up.actor_id) == (
        "topup",
        1500,
        "Conference credit",
        900,
    )
    await assert_ledger_adds_up(admin_app, 901)
    (audited,) = await audit_rows(admin_app, "balance.topup")
    assert (audited.actor_id, audited.resource_id) == (900, "901")
    assert audited.after["reason"] == "Conference credit"


async def test_double_submitted_top_up_is_charged_once(
    staff_admin: AdminClient, admin_app: Any
) -> None:
    await open_accounts(admin_app, 901)
    page = await staff_admin.get("/admin/users/901")
    form = {
        "csrf_token": csrf_of(page.text),
        "back": "/admin/users/901",
        "idempotency_key": key_of(page.text, "/admin/users/901/topup"),
        "amount": "500",
        "reason": "Refund for an outage",
    }
    first = await staff_admin.http.post("/admin/users/901/topup", data=form)
    assert first.status_code == 303
    shown = flashes((await staff_admin.get("/admin/users/901")).text)
    assert shown == ["Added 500 tokens to bob (#901). Balance now 10,500."]
    # The same form sent again (back button, resubmit): applied once, and said so.
    second = await staff_admin.http.post("/admin/users/901/topup", data=form)
    assert second.status_code == 303
    after = await staff_admin.get("/admin/users/901")
    (message,) = flashes(after.text)
    assert "was already applied" in message
    assert (await balance(admin_app, 901)).balance == 10_500
    assert [r.kind for r in await ledger_rows(admin_app, 901)] == ["topup", "grant"]
    assert len(await audit_rows(admin_app, "balance.topup")) == 1
    # The page renders a fresh key, so the next top-up is a new one.
    assert key_of(after.text, "/admin/users/901/topup") != form["idempotency_key"]


async def test_top_up_opens_the_account_of_a_user_omnimap_knows(
    staff_admin: AdminClient, admin_app: Any
) -> None:
    page = await staff_admin.get("/admin/users/900")
    assert page.status_code == 200
    assert "No balance yet" in page.text
    response = await staff_admin.submit(
        "/admin/users/900",
        "/admin/users/900/topup",
        back="/admin/users/900",
        amount="100",
        reason="Welcome",
    )
    assert response.status_code == 303
    assert (await balance(admin_app, 900)).balance == 10_100  # the initial grant, then this
    await assert_ledger_adds_up(admin_app, 900)
    # Someone neither the gateway nor omnimap-back knows is not a page.
    missing = await staff_admin.get("/admin/users/4242")
    assert missing.status_code == 404
    assert "User 4242 has no balance yet." in missing.text
    assert (await staff_admin.get("/admin/users/not-a-number")).status_code == 404


async def test_bad_top_up_is_a_message_and_changes_nothing(
    staff_admin: AdminClient, admin_app: Any
) -> None:
    await open_accounts(admin_app, 901)
    for fields, message in (
        ({"amount": "100", "reason": ""}, "Reason is required."),
        ({"amount": "lots", "reason": "x"}, "Amount must be a whole number."),
        ({"amount": "-5", "reason": "x"}, "amount must be 1 to"),
    ):
        response = await staff_admin.submit(
            "/admin/users/901", "/admin/users/901/topup", back="/admin/users/901", **fields
        )
        assert response.headers["location"] == "/admin/users/901"
        shown = flashes((await staff_admin.get("/admin/users/901")).text)
        assert any(message in text for text in shown), shown
    assert (await balance(admin_app, 901)).balance == 10_000
    assert len(await ledger_rows(admin_app, 901)) == 1


async def test_taking_tokens_asks_first_and_never_goes_below_zero(
    staff_admin: AdminClient, admin_app: Any
) -> None:
    await open_accounts(admin_app, 901)
    fields = {"back": "/admin/users/901", "amount": "-20000", "reason": "Chargeback"}
    asked = await staff_admin.submit("/admin/users/901", "/admin/users/901/adjust", **fields)
    assert asked.status_code == 200
    assert "Take 20,000 tokens" in asked.text
    assert (await balance(admin_app, 901)).balance == 10_000  # only asked so far

    refused = await staff_admin.http.post(
        "/admin/users/901/adjust",
        data={"csrf_token": csrf_of(asked.text), "confirm": "yes", **fields},
    )
    assert refused.status_code == 303
    page = await staff_admin.get("/admin/users/901")
    assert any("below zero" in text for text in flashes(page.text))
    assert 'class="flash flash-error"' in page.text
    assert (await balance(admin_app, 901)).balance == 10_000
    assert len(await ledger_rows(admin_app, 901)) == 1
    assert await audit_rows(admin_app, "balance.adjust") == []

    taken = await staff_admin.http.post(
        "/admin/users/901/adjust",
        data={"csrf_token": csrf_of(asked.text), "confirm": "yes", **fields, "amount": "-1000"},
    )
    assert taken.status_code == 303
    page = await staff_admin.get("/admin/users/901")
    assert "Took 1,000 tokens from bob (#901). Balance now 9,000." in flashes(page.text)
    # Adding needs no confirmation.
    added = await staff_admin.submit(
        "/admin/users/901", "/admin/users/901/adjust", **{**fields, "amount": "250"}
    )
    assert added.status_code == 303
    assert (await balance(admin_app, 901)).balance == 9_250
    await assert_ledger_adds_up(admin_app, 901)
    assert [row.after["amount"] for row in await audit_rows(admin_app, "balance.adjust")] == [
        250,
        -1000,
    ]


async def test_limits_are_set_and_cleared(staff_admin: AdminClient, admin_app: Any) -> None:
    await open_accounts(admin_app, 901)
    response = await staff_admin.submit(
        "/admin/users/901",
        "/admin/users/901/limits",
        back="/admin/users/901",
        daily_limit="1000",
        monthly_limit="20,000",
    )
    assert response.status_code == 303
    page = await staff_admin.get("/admin/users/901")
    assert "Limits of bob (#901) saved: daily 1,000, monthly 20,000." in flashes(page.text)
    assert 'id="limits-daily_limit" name="daily_limit" type="number" value="1000"' in page.text
    view = await balance(admin_app, 901)
    assert (view.daily.limit, view.monthly.limit) == (1000, 20000)
    listed = await staff_admin.get("/admin/users")
    assert "1,000" in row_of(listed.text, "user-901")

    bad = await staff_admin.submit(
        "/admin/users/901",
        "/admin/users/901/limits",
        back="/admin/users/901",
        daily_limit="a lot",
        monthly_limit="",
    )
    assert bad.status_code == 303
    page = await staff_admin.get("/admin/users/901")
    assert "Daily limit must be a whole number." in flashes(page.text)
    assert (await balance(admin_app, 901)).daily.limit == 1000

    await staff_admin.submit(
        "/admin/users/901",
        "/admin/users/901/limits",
        back="/admin/users/901",
        daily_limit="",
        monthly_limit="",
    )
    view = await balance(admin_app, 901)
    assert (view.daily.limit, view.monthly.limit) == (None, None)
    audited = await audit_rows(admin_app, "balance.set_limits")
    assert [row.after for row in audited] == [
        {"dailyLimit": None, "monthlyLimit": None},
        {"dailyLimit": 1000, "monthlyLimit": 20000},
    ]


# -- transactions -----------------------------------------------------------------------------


async def test_transactions_filter_and_page(staff_admin: AdminClient, admin_app: Any) -> None:
    empty = await staff_admin.get("/admin/transactions")
    assert "No transactions yet" in empty.text
    await open_accounts(admin_app, 901, 42)
    await change(admin_app, 901, 10, times=30)
    await change(admin_app, 42, -5, kind="adjustment")

    first = await staff_admin.get("/admin/transactions")
    assert first.status_code == 200
    assert len(row_ids(first.text, "tx")) == 25
    assert "bob" in first.text
    following = link(first.text, "Next page »")
    assert following
    second = await staff_admin.get(following)
    assert len(row_ids(second.text, "tx")) == 33 - 25  # 2 grants, 30 top-ups, 1 adjustment
    assert not set(row_ids(first.text, "tx")) & set(row_ids(second.text, "tx"))
    assert link(second.text, "« First page") == "/admin/transactions"

    by_id = await staff_admin.get("/admin/transactions", user="42")
    assert len(row_ids(by_id.text, "tx")) == 2
    assert "bob" not in by_id.text.split("<tbody>")[1]
    by_name = await staff_admin.get("/admin/transactions", user="Bob")
    assert len(row_ids(by_name.text, "tx")) == 25
    adjustments = await staff_admin.get("/admin/transactions", kind="adjustment")
    (only,) = row_ids(adjustments.text, "tx")
    assert "-5" in row_of(adjustments.text, f"tx-{only}")
    assert "#42" in row_of(adjustments.text, f"tx-{only}")
    grants = await staff_admin.get("/admin/transactions", kind="grant", user="901")
    assert len(row_ids(grants.text, "tx")) == 1

    # Filters carry over to the next page.
    top_ups = await staff_admin.get("/admin/transactions", kind="topup")
    following = link(top_ups.text, "Next page »")
    assert following
    assert "kind=topup" in following
    rest = await staff_admin.get(following)
    assert len(row_ids(rest.text, "tx")) == 5
    assert link(rest.text, "« First page") == "/admin/transactions?kind=topup"

    today = dt.datetime.now(dt.UTC).date()
    in_range = await staff_admin.get(
        "/admin/transactions", user="42", **{"from": str(today), "to": str(today)}
    )
    assert len(row_ids(in_range.text, "tx")) == 2
    tomorrow = await staff_admin.get(
        "/admin/transactions", **{"from": str(today + dt.timedelta(days=1))}
    )
    assert "No transactions match these filters." in tomorrow.text
    backwards = await staff_admin.get(
        "/admin/transactions", **{"from": str(today), "to": str(today - dt.timedelta(days=1))}
    )
    assert backwards.status_code == 400
    assert "&#39;from&#39; must not be after &#39;to&#39;." in backwards.text
    for bad in ({"kind": "bonus"}, {"user": "nobody"}, {"after": "garbage"}, {"from": "May"}):
        response = await staff_admin.get("/admin/transactions", **bad)
        assert response.status_code == 400, bad
        assert 'class="flash flash-error"' in response.text


# -- agents -----------------------------------------------------------------------------------


async def agents_by_name(app: Any) -> dict[str, Any]:
    async with app.state.services.db.read() as session:
        return {a.name: a for a in await catalog.list_agents(session, include_disabled=True)}


async def model_id(app: Any, name: str) -> int:
    async with app.state.services.db.read() as session:
        return (await catalog.get_model(session, name, include_disabled=True)).id


NEW_AGENT = {
    "name": "Reviewer",
    "description": "Turns anything into English.",
    "system_prompt": "Translate the user's message into English.",
    "model": "mock",
    "temperature": "0.5",
    "top_p": "",
    "max_tokens": "100",
    "enabled": "on",
}


async def test_agent_create_edit_disable_delete(staff_admin: AdminClient, admin_app: Any) -> None:
    seeded = set(await agents_by_name(admin_app))
    form = await staff_admin.get("/admin/agents/new")
    assert '<option value="mock">mock</option>' in form.text
    for name in ("name", "description", "system_prompt", "model", "temperature", "top_p"):
        assert f'<label for="f-{name}">' in form.text
        assert f'id="f-{name}"' in form.text

    created = await staff_admin.submit("/admin/agents/new", "/admin/agents/new", **NEW_AGENT)
    assert created.status_code == 303
    page = await staff_admin.get("/admin/agents")
    assert "Agent Reviewer created." in flashes(page.text)
    agent = (await agents_by_name(admin_app))["Reviewer"]
    assert (agent.model_id, agent.temperature, agent.max_tokens, agent.enabled) == (
        await model_id(admin_app, "mock"),
        0.5,
        100,
        True,
    )
    assert "Reviewer" in row_of(page.text, f"agent-{agent.id}")

    edit_path = f"/admin/agents/{agent.id}/edit"
    editing = await staff_admin.get(edit_path)
    assert 'value="Reviewer"' in editing.text
    assert '<option value="mock" selected>' in editing.text
    edited = {**NEW_AGENT, "name": "Reviewer EN", "temperature": "", "model": "gpt-4-turbo"}
    assert (await staff_admin.submit(edit_path, edit_path, **edited)).status_code == 303
    agent = (await agents_by_name(admin_app))["Reviewer EN"]
    assert agent.temperature is None
    assert agent.model_id == await model_id(admin_app, "gpt-4-turbo")

    toggled = await staff_admin.submit(
        "/admin/agents", f"/admin/agents/{agent.id}/enabled", enabled="false", back="/admin/agents"
    )
    assert toggled.status_code == 303
    page = await staff_admin.get("/admin/agents")
    assert "Agent Reviewer EN disabled." in flashes(page.text)
    assert "disabled" in row_of(page.text, f"agent-{agent.id}")
    assert not (await agents_by_name(admin_app))["Reviewer EN"].enabled

    asked = await staff_admin.submit(
        "/admin/agents", f"/admin/agents/{agent.id}/delete", back="/admin/agents"
    )
    assert asked.status_code == 200
    assert "Delete agent Reviewer EN?" in asked.text
    assert "Reviewer EN" in await agents_by_name(admin_app)  # not yet
    deleted = await staff_admin.http.post(
        f"/admin/agents/{agent.id}/delete",
        data={"csrf_token": csrf_of(asked.text), "confirm": "yes", "back": "/admin/agents"},
    )
    assert deleted.status_code == 303
    page = await staff_admin.get("/admin/agents")
    assert "Agent Reviewer EN deleted." in flashes(page.text)
    assert set(await agents_by_name(admin_app)) == seeded
    assert (await staff_admin.get(edit_path)).status_code == 404

    for action, count in (("agent.create", 1), ("agent.update", 2), ("agent.delete", 1)):
        rows = await audit_rows(admin_app, action)
        assert [(row.actor_id, row.resource_id) for row in rows] == [(900, str(agent.id))] * count


async def test_invalid_agent_keeps_the_form_and_says_why(
    staff_admin: AdminClient, admin_app: Any
) -> None:
    seeded = set(await agents_by_name(admin_app))
    too_hot = {**NEW_AGENT, "temperature": "5"}
    response = await staff_admin.submit("/admin/agents/new", "/admin/agents/new", **too_hot)
    assert response.status_code == 400
    assert "temperature must be from 0 to 2.0 for mock." in response.text
    assert 'value="Reviewer"' in response.text  # what was typed stays
    assert set(await agents_by_name(admin_app)) == seeded
    await staff_admin.submit("/admin/agents/new", "/admin/agents/new", **NEW_AGENT)
    twice = await staff_admin.submit("/admin/agents/new", "/admin/agents/new", **NEW_AGENT)
    assert twice.status_code == 400
    assert "An agent named &#39;Reviewer&#39; already exists." in twice.text
    assert set(await agents_by_name(admin_app)) == {*seeded, "Reviewer"}


# -- access -----------------------------------------------------------------------------------

PAGES = ("/admin/users", "/admin/users/901", "/admin/transactions", "/admin/agents")


@pytest.mark.parametrize("as_bob", [False, True])
async def test_pages_need_a_staff_session(admin: AdminClient, admin_app: Any, as_bob: bool) -> None:
    await open_accounts(admin_app, 901)
    if as_bob:
        assert (await admin.login("bob", "bob-password")).status_code == 403
    for path in (*PAGES, "/admin/agents/new"):
        response = await admin.get(path)
        assert response.status_code == 303, path
        assert response.headers["location"] == f"/admin/login?next={path}"
    posted = await admin.http.post(
        "/admin/users/901/topup", data={"amount": "1000", "reason": "free tokens"}
    )
    assert posted.status_code == 303
    assert posted.headers["location"].startswith("/admin/login")
    assert (await balance(admin_app, 901)).balance == 10_000


async def test_a_post_without_the_session_token_is_refused(
    staff_admin: AdminClient, admin_app: Any
) -> None:
    await open_accounts(admin_app, 901)
    forged = await staff_admin.http.post(
        "/admin/users/901/topup",
        data={"amount": "1000", "reason": "free tokens", "csrf_token": "guess"},
    )
    assert forged.status_code == 403
    assert (await balance(admin_app, 901)).balance == 10_000
    for path in PAGES:
        page = await staff_admin.get(path)
        assert page.status_code == 200, path
        # Every form that posts carries the token; every input has a label.
        assert page.text.count('method="post"') == page.text.count('name="csrf_token"')
        for field_id in re.findall(r'<(?:input|select|textarea) id="([^"]+)"', page.text):
            assert f'<label for="{field_id}">' in page.text, (path, field_id)
