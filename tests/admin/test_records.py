"""Admin pages over records: every dialog and its messages (read, delete), the audit log,
and runtime settings (secrets masked, set, rotate, reset), driven over HTTP like a browser."""

from __future__ import annotations

import datetime as dt
import html
import re
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from llm_gateway.db.models import Dialog, Message, SystemConfig, TokenTransaction
from llm_gateway.services.chat import dialogs
from llm_gateway.services.staff import audit
from llm_gateway.services.staff import runtime_settings as config
from tests.admin_support import AdminClient, audit_entries, csrf_of, flashes
from tests.chat_support import assert_exact, finished, new_dialog, send
from tests.factories import add_message, create_dialog, database_of
from tests.fakes.omnimap_back import OmnimapBack
from tests.support import GraphQLClient

ALICE, BOB = 900, 901
SECRET = "sk-live-PLAINTEXTsecretVALUE-0042abcd"

# The admin only renders what the services return; the services run on both backends
# elsewhere. So these run on PostgreSQL (production), and tests/test_admin_smoke.py
# walks every page on SQLite too.
pytestmark = pytest.mark.postgres_only


def _dialog_rows(page: str) -> list[str]:
    """The ids of the dialogs listed, in page order."""
    return re.findall(r'<tr id="dialog-([0-9a-f-]{36})"', page)


def _owner_cells(page: str) -> list[str]:
    cells = re.findall(r'<a href="/admin/users/\d+">(.*?)</a></td>', page, re.S)
    return [html.unescape(re.sub(r"<[^>]+>", "", cell)).strip() for cell in cells]


def _next_link(page: str, label: str = "Next page") -> str | None:
    found = re.search(rf'<a href="([^"]+)">[^<]*{label}', page)
    return html.unescape(found.group(1)) if found else None


async def _audit(app: Any, **filters: Any) -> list[tuple[str, int | None, str | None, Any]]:
    """(action, actor, resource id, before) of the audit entries, newest first."""
    rows = await audit_entries(app, **filters)
    return [(row.action, row.actor_id, row.resource_id, row.before) for row in rows]


async def _message(app: Any, message_id: uuid.UUID) -> Message | None:
    async with database_of(app).read() as session:
        return await session.get(Message, message_id)


async def _dialog(app: Any, dialog_id: uuid.UUID) -> Dialog:
    async with database_of(app).read() as session:
        row = await session.get(Dialog, dialog_id)
    assert row is not None
    return row


async def _post(admin: AdminClient, page_path: str, action: str, **fields: str) -> httpx.Response:
    return await admin.submit(page_path, action, back=page_path, **fields)


# -- dialogs: the list -------------------------------------------------------------------------


async def test_dialogs_list_usernames_from_omnimap_back(
    staff_admin: AdminClient, admin_app: Any
) -> None:
    mine = await create_dialog(admin_app, ALICE, title="Alice's <plans>")
    theirs = await create_dialog(admin_app, BOB, title="Bob's questions")
    await add_message(admin_app, theirs, BOB, "one")
    await add_message(admin_app, theirs, BOB, "two")
    page = await staff_admin.get("/admin/dialogs")
    assert page.status_code == 200
    assert _dialog_rows(page.text) == [str(theirs), str(mine)]  # newest first
    assert _owner_cells(page.text) == ["bob #901", "alice #900"]
    assert "Alice&#39;s &lt;plans&gt;" in page.text  # escaped, never markup
    counts = re.findall(r'<td class="num">(\d+)</td>', page.text)
    assert counts == ["2", "0"]
    assert f'href="/admin/dialogs/{theirs}"' in page.text


async def test_dialogs_list_shows_ids_when_the_user_list_is_down(
    staff_admin: AdminClient, admin_app: Any, omnimap: OmnimapBack
) -> None:
    omnimap.list_down = True
    await create_dialog(admin_app, BOB, title="Still listed")
    page = await staff_admin.get("/admin/dialogs")
    assert page.status_code == 200
    assert _owner_cells(page.text) == ["#901"]
    assert "bob" not in page.text
    assert "Still listed" in page.text


async def test_dialogs_list_empty_states(staff_admin: AdminClient, admin_app: Any) -> None:
    page = await staff_admin.get("/admin/dialogs")
    assert "No dialogs yet" in page.text
    await create_dialog(admin_app, BOB)
    filtered = await staff_admin.get("/admin/dialogs", user="12345")
    assert _dialog_rows(filtered.text) == []
    assert "No dialogs match these filters." in filtered.text


async def test_dialogs_filters(staff_admin: AdminClient, admin_app: Any) -> None:
    by_alice = await create_dialog(admin_app, ALICE, model="gpt-4-turbo")
    by_bob = await create_dialog(admin_app, BOB)
    gone = await create_dialog(admin_app, BOB, title="Removed by its owner")
    async with database_of(admin_app).transaction() as session:
        await dialogs.delete_dialog(session, BOB, gone)

    async def listed(**filters: str) -> list[str]:
        page = await staff_admin.get("/admin/dialogs", **filters)
        assert page.status_code == 200, page.text
        return _dialog_rows(page.text)

    assert await listed() == [str(by_bob), str(by_alice)]
    assert await listed(user=str(BOB)) == [str(by_bob)]
    assert await listed(model="gpt-4-turbo") == [str(by_alice)]
    assert await listed(model="mock", user=str(ALICE)) == []
    assert await listed(show="deleted") == [str(gone)]
    assert await listed(show="all") == [str(gone), str(by_bob), str(by_alice)]
    today = (await _dialog(admin_app, by_bob)).created_at.date()
    assert await listed(to=today.isoformat()) == [str(by_bob), str(by_alice)]
    tomorrow = today + dt.timedelta(days=1)
    assert await listed(**{"from": tomorrow.isoformat()}) == []
    deleted_page = await staff_admin.get("/admin/dialogs", show="deleted")
    assert '<span class="badge off">deleted</span>' in deleted_page.text

    bad = await staff_admin.get("/admin/dialogs", **{"from": "2030-01-02", "to": "2030-01-01"})
    assert bad.status_code == 400
    assert "&#39;from&#39; must not be after &#39;to&#39;." in bad.text
    assert (await staff_admin.get("/admin/dialogs", user="bob")).status_code == 400


async def test_dialogs_pages_with_the_cursor(staff_admin: AdminClient, admin_app: Any) -> None:
    made = [await create_dialog(admin_app, BOB, title=f"Dialog {n}") for n in range(27)]
    newest_first = [str(d) for d in reversed(made)]
    first = await staff_admin.get("/admin/dialogs", user=str(BOB))
    assert _dialog_rows(first.text) == newest_first[:25]
    assert _next_link(first.text, "First page") is None
    next_url = _next_link(first.text)
    assert next_url is not None
    assert f"user={BOB}" in next_url  # the filter is kept
    second = await staff_admin.get(next_url)
    assert _dialog_rows(second.text) == newest_first[25:]
    assert _next_link(second.text) is None
    assert _next_link(second.text, "First page") == f"/admin/dialogs?user={BOB}"
    broken = await staff_admin.get("/admin/dialogs", after="not-a-cursor")
    assert broken.status_code == 400
    assert "Invalid cursor." in broken.text


# -- dialogs: one dialog ---------------------------------------------------------------------


async def test_dialog_detail_shows_messages_in_order(
    staff_admin: AdminClient, admin_app: Any
) -> None:
    dialog_id = await create_dialog(admin_app, BOB, title="Trip", system_prompt="Be brief.")
    first = await add_message(admin_app, dialog_id, BOB, "Where to go?\n<script>x</script>")
    second = await add_message(admin_app, dialog_id, BOB, "Lisbon, in spring.", role="assistant")
    page = await staff_admin.get(f"/admin/dialogs/{dialog_id}")
    assert page.status_code == 200
    assert re.findall(r'<li id="message-([0-9a-f-]{36})"', page.text) == [
        str(first),
        str(second),
    ]
    assert '<div class="message">Where to go?\n&lt;script&gt;x&lt;/script&gt;</div>' in page.text
    assert "Lisbon, in spring." in page.text
    assert "Be brief." in page.text
    assert 'bob <span class="muted">#901</span>' in page.text  # the owner
    assert "mock" in page.text  # the dialog's model
    assert page.text.count("Delete message…") == 2
    assert "Delete dialog…" in page.text


async def test_dialog_detail_pages_long_dialogs(staff_admin: AdminClient, admin_app: Any) -> None:
    dialog_id = await create_dialog(admin_app, BOB)
    ids = [await add_message(admin_app, dialog_id, BOB, f"message {n}") for n in range(52)]
    page = await staff_admin.get(f"/admin/dialogs/{dialog_id}")
    shown = re.findall(r'<li id="message-([0-9a-f-]{36})"', page.text)
    assert shown == [str(i) for i in ids[:50]]
    next_url = _next_link(page.text)
    assert next_url is not None
    rest = await staff_admin.get(next_url)
    assert re.findall(r'<li id="message-([0-9a-f-]{36})"', rest.text) == [str(i) for i in ids[50:]]


async def test_unknown_dialog_is_a_404_page(staff_admin: AdminClient) -> None:
    assert (await staff_admin.get(f"/admin/dialogs/{uuid.uuid4()}")).status_code == 404
    assert (await staff_admin.get("/admin/dialogs/not-a-uuid")).status_code == 404


async def test_dialog_pages_need_a_staff_session(admin: AdminClient) -> None:
    response = await admin.get("/admin/dialogs")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/admin/login")


# -- dialogs: deleting -----------------------------------------------------------------------


async def test_deleting_a_message_asks_first_then_deletes_and_audits(
    staff_admin: AdminClient, admin_app: Any
) -> None:
    dialog_id = await create_dialog(admin_app, BOB)
    question = await add_message(admin_app, dialog_id, BOB, "Keep me")
    doomed = await add_message(admin_app, dialog_id, BOB, "Doomed answer", role="assistant")
    path = f"/admin/dialogs/{dialog_id}"
    action = f"{path}/messages/{doomed}/delete"

    asked = await _post(staff_admin, path, action)
    assert asked.status_code == 200
    assert "Delete this message?" in asked.text
    assert 'name="confirm" value="yes"' in asked.text
    assert await _message(admin_app, doomed) is not None  # nothing changed yet
    assert await _audit(admin_app, action="message.delete") == []

    done = await staff_admin.http.post(
        action, data={"csrf_token": csrf_of(asked.text), "confirm": "yes", "back": path}
    )
    assert done.status_code == 303
    assert done.headers["location"] == path
    after = await staff_admin.get(path)
    assert "Deleted the assistant message." in flashes(after.text)
    assert "Doomed answer" not in after.text
    assert "Keep me" in after.text
    assert await _message(admin_app, doomed) is None
    assert await _message(admin_app, question) is not None
    [(name, actor, resource, before)] = await _audit(admin_app, action="message.delete")
    assert (name, actor, resource) == ("message.delete", ALICE, str(doomed))
    assert before["dialog_id"] == str(dialog_id)
    assert "Doomed answer" not in str(before)  # the audit log keeps no deleted text


async def test_deleting_a_dialog_asks_first_then_soft_deletes_and_audits(
    staff_admin: AdminClient, admin_app: Any
) -> None:
    dialog_id = await create_dialog(admin_app, BOB, title="Spam")
    await add_message(admin_app, dialog_id, BOB, "spam spam")
    path = f"/admin/dialogs/{dialog_id}"

    asked = await _post(staff_admin, path, f"{path}/delete")
    assert asked.status_code == 200
    assert "Delete this dialog?" in asked.text
    assert "bob (#901)" in asked.text
    assert (await _dialog(admin_app, dialog_id)).deleted_at is None
    assert await _audit(admin_app, action="dialog.delete") == []

    done = await staff_admin.http.post(
        f"{path}/delete",
        data={"csrf_token": csrf_of(asked.text), "confirm": "yes", "back": path},
    )
    assert done.status_code == 303
    assert done.headers["location"] == "/admin/dialogs"
    listing = await staff_admin.get("/admin/dialogs")
    assert "Deleted dialog “Spam” of bob (#901)." in flashes(listing.text)
    assert _dialog_rows(listing.text) == []
    assert (await _dialog(admin_app, dialog_id)).deleted_at is not None
    async with database_of(admin_app).read() as session:
        owner_view = await dialogs.list_dialogs(
            session, BOB, first=10, after=None, search=None, max_page_size=100
        )
    assert owner_view.items == []  # gone for its owner, as their own delete does
    staff_view = await staff_admin.get(path)
    assert staff_view.status_code == 200  # staff still see it, marked
    assert "Deleted (UTC)" in staff_view.text
    assert "Delete dialog…" not in staff_view.text
    again = await staff_admin.http.post(
        f"{path}/delete", data={"csrf_token": csrf_of(staff_view.text), "back": path}
    )
    assert again.status_code == 303
    assert "This dialog is already deleted." in flashes((await staff_admin.get(path)).text)
    assert [entry[:3] for entry in await _audit(admin_app, action="dialog.delete")] == [
        ("dialog.delete", ALICE, str(dialog_id))
    ]


async def test_a_message_being_generated_is_not_deleted(
    staff_admin: AdminClient, admin_app: Any
) -> None:
    dialog_id = await create_dialog(admin_app, BOB)
    question = await add_message(admin_app, dialog_id, BOB, "Tell me a story")
    answer = await add_message(admin_app, dialog_id, BOB, "Once upon", role="assistant")
    async with database_of(admin_app).transaction() as session:
        await session.execute(
            update(Message)
            .where(Message.id == answer)
            .values(status="streaming", parent_id=question)
        )
    path = f"/admin/dialogs/{dialog_id}"
    page = await staff_admin.get(path)
    assert "Being generated" in page.text
    for message_id in (answer, question):
        refused = await staff_admin.http.post(
            f"{path}/messages/{message_id}/delete",
            data={"csrf_token": csrf_of(page.text), "confirm": "yes", "back": path},
        )
        assert refused.status_code == 303
        assert refused.headers["location"] == path
        shown = flashes((await staff_admin.get(path)).text)
        assert any("still being generated" in text for text in shown), shown
        assert await _message(admin_app, message_id) is not None
    assert await _audit(admin_app, action="message.delete") == []


async def test_deleting_a_charged_answer_keeps_the_ledger_exact(
    staff_admin: AdminClient, admin_app: Any
) -> None:
    gql = GraphQLClient(staff_admin.http)
    dialog_id = await new_dialog(gql, user=BOB)
    sent = (await send(gql, dialog_id, "Hello, mock!", user=BOB)).ok()["sendMessage"]
    answer = await finished(admin_app, sent["assistantMessage"]["id"])
    assert answer.status == "complete"
    assert answer.charged_tokens
    before = await assert_exact(admin_app, BOB)
    path = f"/admin/dialogs/{dialog_id}"
    page = await staff_admin.get(path)
    done = await staff_admin.http.post(
        f"{path}/messages/{answer.id}/delete",
        data={"csrf_token": csrf_of(page.text), "confirm": "yes", "back": path},
    )
    assert done.status_code == 303
    assert await _message(admin_app, answer.id) is None
    after = await assert_exact(admin_app, BOB)
    assert after.balance == before.balance
    assert [row.id for row in after.usage_rows] == [row.id for row in before.usage_rows]
    async with database_of(admin_app).read() as session:
        charged = await session.scalar(
            select(TokenTransaction.amount).where(TokenTransaction.message_id == answer.id)
        )
    assert charged == -answer.charged_tokens


# -- the audit log ---------------------------------------------------------------------------


def _actions(page: str) -> list[str]:
    return re.findall(r"<td><code>([a-z_.]+)</code></td>", page)


async def test_audit_log_filters_by_action_and_actor(
    staff_admin: AdminClient, admin_app: Any
) -> None:
    services = admin_app.state.services
    async with database_of(admin_app).transaction() as session:
        await config.set_config(
            session, audit.Actor(user_id=BOB), services.cipher, "RATE_LIMIT_WINDOW", "30"
        )
    await _post(staff_admin, "/admin/settings", "/admin/settings", key="GIGACHAT_SCOPE", value="X")

    everything = await staff_admin.get("/admin/audit")
    assert everything.status_code == 200
    assert _actions(everything.text)[:3] == ["config.set", "config.set", "admin.login"]
    by_action = await staff_admin.get("/admin/audit", action="config.set")
    assert _actions(by_action.text) == ["config.set", "config.set"]
    by_actor = await staff_admin.get("/admin/audit", actor=str(BOB))
    assert _actions(by_actor.text) == ["config.set"]
    assert "RATE_LIMIT_WINDOW" in by_actor.text
    assert "GIGACHAT_SCOPE" not in by_actor.text
    assert "bob" in by_actor.text  # the actor's username, from omnimap-back
    both = await staff_admin.get("/admin/audit", action="config.set", actor=str(ALICE))
    assert _actions(both.text) == ["config.set"]
    assert '{"secret":false,"value":"X"}' in html.unescape(both.text)  # compact JSON
    by_resource = await staff_admin.get(
        "/admin/audit", resource_type="system_config", resource_id="RATE_LIMIT_WINDOW"
    )
    assert _actions(by_resource.text) == ["config.set"]
    none = await staff_admin.get("/admin/audit", action="no.such")
    assert "No audit entries match these filters." in none.text
    bad = await staff_admin.get("/admin/audit", actor="alice")
    assert bad.status_code == 400
    assert "Actor id must be a positive whole number." in bad.text


async def test_audit_log_pages(staff_admin: AdminClient, admin_app: Any) -> None:
    services = admin_app.state.services
    async with database_of(admin_app).transaction() as session:
        for n in range(26):
            await config.set_config(
                session, audit.Actor(user_id=BOB), services.cipher, "RATE_LIMIT_WINDOW", str(n + 1)
            )
    first = await staff_admin.get("/admin/audit", actor=str(BOB))
    assert len(_actions(first.text)) == 25
    next_url = _next_link(first.text)
    assert next_url is not None
    second = await staff_admin.get(next_url)
    assert len(_actions(second.text)) == 1
    assert _next_link(second.text, "First page") == f"/admin/audit?actor={BOB}"


# -- settings --------------------------------------------------------------------------------


async def _overrides(app: Any) -> dict[str, str]:
    services = app.state.services
    async with services.db.read() as session:
        values: dict[str, str] = await config.overrides(session, services.cipher)
    return values


async def _stored(app: Any, key: str) -> str | None:
    async with database_of(app).read() as session:
        row = await session.get(SystemConfig, key)
    return None if row is None else row.value


async def test_settings_list_known_keys(staff_admin: AdminClient) -> None:
    page = await staff_admin.get("/admin/settings")
    assert page.status_code == 200
    for key, known in config.KNOWN_KEYS.items():
        assert f'id="setting-{key}"' in page.text
        assert f'<label for="v-{key}">' in page.text
        assert known.description in html.unescape(page.text)
    assert 'type="password"' in page.text


async def test_a_secret_is_masked_after_saving(staff_admin: AdminClient, admin_app: Any) -> None:
    saved = await _post(
        staff_admin, "/admin/settings", "/admin/settings", key="OPENAI_API_KEY", value=SECRET
    )
    assert saved.status_code == 303
    page = await staff_admin.get("/admin/settings")
    mask = config.mask(SECRET)
    assert f"OPENAI_API_KEY saved: it shows as {mask}." in flashes(page.text)
    assert mask in page.text
    assert SECRET not in page.text
    assert "PLAINTEXTsecret" not in page.text  # not even a part of it
    assert (await _overrides(admin_app))["OPENAI_API_KEY"] == SECRET
    stored = await _stored(admin_app, "OPENAI_API_KEY")
    assert stored is not None
    assert "PLAINTEXTsecret" not in stored  # encrypted at rest
    audit_page = await staff_admin.get("/admin/audit")
    assert "PLAINTEXTsecret" not in audit_page.text
    assert mask in audit_page.text


async def test_rotating_a_secret_changes_the_stored_value(
    staff_admin: AdminClient, admin_app: Any
) -> None:
    await _post(
        staff_admin, "/admin/settings", "/admin/settings", key="OPENAI_API_KEY", value=SECRET
    )
    old_row = await _stored(admin_app, "OPENAI_API_KEY")
    page = await staff_admin.get("/admin/settings")
    assert 'name="rotate" value="yes"' in page.text
    rotated = "sk-live-ROTATEDsecret-9999wxyz"
    response = await _post(
        staff_admin,
        "/admin/settings",
        "/admin/settings",
        key="OPENAI_API_KEY",
        value=rotated,
        rotate="yes",
    )
    assert response.status_code == 303
    shown = await staff_admin.get("/admin/settings")
    assert f"OPENAI_API_KEY rotated: the new value shows as {config.mask(rotated)}." in flashes(
        shown.text
    )
    assert "ROTATEDsecret" not in shown.text
    assert (await _overrides(admin_app))["OPENAI_API_KEY"] == rotated
    assert await _stored(admin_app, "OPENAI_API_KEY") != old_row


async def test_a_limit_takes_effect_and_a_bad_value_is_a_flash_error(
    staff_admin: AdminClient, admin_app: Any
) -> None:
    services = admin_app.state.services
    await _post(
        staff_admin, "/admin/settings", "/admin/settings", key="INITIAL_TOKEN_BALANCE", value="123"
    )
    page = await staff_admin.get("/admin/settings")
    assert "INITIAL_TOKEN_BALANCE set to 123." in flashes(page.text)
    assert services.limits.initial_balance == 123  # in use at once, no restart
    bad = await _post(
        staff_admin, "/admin/settings", "/admin/settings", key="INITIAL_TOKEN_BALANCE", value="lots"
    )
    assert bad.status_code == 303
    after = await staff_admin.get("/admin/settings")
    assert "INITIAL_TOKEN_BALANCE takes a whole number of at least 0." in flashes(after.text)
    assert (await _overrides(admin_app))["INITIAL_TOKEN_BALANCE"] == "123"
    empty = await _post(
        staff_admin, "/admin/settings", "/admin/settings", key="RATE_LIMIT_WINDOW", value=""
    )
    assert empty.status_code == 303
    assert "A value for RATE_LIMIT_WINDOW is required." in flashes(
        (await staff_admin.get("/admin/settings")).text
    )
    assert "RATE_LIMIT_WINDOW" not in await _overrides(admin_app)


async def test_resetting_a_setting_asks_first(staff_admin: AdminClient, admin_app: Any) -> None:
    await _post(
        staff_admin, "/admin/settings", "/admin/settings", key="OPENAI_API_KEY", value=SECRET
    )
    asked = await _post(
        staff_admin, "/admin/settings", "/admin/settings/delete", key="OPENAI_API_KEY"
    )
    assert asked.status_code == 200
    assert "Reset OPENAI_API_KEY?" in asked.text
    assert "PLAINTEXTsecret" not in asked.text
    assert "OPENAI_API_KEY" in await _overrides(admin_app)
    done = await staff_admin.http.post(
        "/admin/settings/delete",
        data={
            "csrf_token": csrf_of(asked.text),
            "confirm": "yes",
            "key": "OPENAI_API_KEY",
            "back": "/admin/settings",
        },
    )
    assert done.status_code == 303
    page = await staff_admin.get("/admin/settings")
    assert "OPENAI_API_KEY reset: the default applies again." in flashes(page.text)
    assert "OPENAI_API_KEY" not in await _overrides(admin_app)
    assert [entry[:3] for entry in await _audit(admin_app, action="config.delete")] == [
        ("config.delete", ALICE, "OPENAI_API_KEY")
    ]
    again = await staff_admin.http.post(
        "/admin/settings/delete",
        data={"csrf_token": csrf_of(page.text), "confirm": "yes", "key": "OPENAI_API_KEY"},
    )
    assert again.status_code == 303
    assert "OPENAI_API_KEY is not set: there is nothing to reset." in flashes(
        (await staff_admin.get("/admin/settings")).text
    )


async def test_a_custom_secret_setting(staff_admin: AdminClient, admin_app: Any) -> None:
    await _post(
        staff_admin,
        "/admin/settings",
        "/admin/settings",
        key="WEBHOOK_TOKEN",
        value="whk-PLAINTEXTcustom-5678",
        secret="on",
        description="Signs outgoing webhooks",
    )
    page = await staff_admin.get("/admin/settings")
    assert "WEBHOOK_TOKEN saved: it shows as whk…5678." in flashes(page.text)
    assert "PLAINTEXTcustom" not in page.text
    assert "Signs outgoing webhooks" in page.text
    assert 'id="setting-WEBHOOK_TOKEN"' in page.text


# -- CSRF ------------------------------------------------------------------------------------


async def test_posts_without_the_csrf_token_are_refused(
    staff_admin: AdminClient, admin_app: Any
) -> None:
    dialog_id = await create_dialog(admin_app, BOB)
    message_id = await add_message(admin_app, dialog_id, BOB, "hi")
    path = f"/admin/dialogs/{dialog_id}"
    attempts = [
        (f"{path}/delete", {"confirm": "yes"}),
        (f"{path}/messages/{message_id}/delete", {"confirm": "yes"}),
        ("/admin/settings", {"key": "OPENAI_API_KEY", "value": SECRET}),
        ("/admin/settings/delete", {"key": "OPENAI_API_KEY", "confirm": "yes"}),
    ]
    for action, fields in attempts:
        for token in (None, "forged"):
            data = {**fields, **({"csrf_token": token} if token else {})}
            response = await staff_admin.http.post(action, data=data)
            assert response.status_code == 403, action
            assert "Form expired" in response.text
    assert (await _dialog(admin_app, dialog_id)).deleted_at is None
    assert await _message(admin_app, message_id) is not None
    assert await _overrides(admin_app) == {}
    assert await _audit(admin_app, resource_type="dialog") == []
    assert await _audit(admin_app, resource_type="system_config") == []
