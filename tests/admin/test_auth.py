"""Admin sign-in through omnimap-back, sessions, CSRF and cookie flags."""

from __future__ import annotations

import html
import json
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from llm_gateway.app import create_app
from tests.admin_support import AdminClient, audit_entries, csrf_of, flashes
from tests.conftest import STAFF_LOGIN, admin_settings
from tests.fakes.omnimap_back import OmnimapBack
from tests.support import GraphQLClient, token

# The admin only renders what the services return; the services run on both backends
# elsewhere. So these run on PostgreSQL (production), and tests/test_admin_smoke.py
# walks every page on SQLite too.
pytestmark = pytest.mark.postgres_only


async def _audit_actions(app: Any) -> list[tuple[str, int | None, Any]]:
    rows = await audit_entries(app, resource_type="admin_session")
    return [(row.action, row.actor_id, row.after) for row in rows]


async def test_staff_signs_in_and_sees_the_dashboard(admin: AdminClient, admin_app: Any) -> None:
    response = await admin.login(*STAFF_LOGIN)
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/"
    cookie = response.headers["set-cookie"]
    assert "admin_session=" in cookie
    assert "httponly" in cookie.lower()
    assert "samesite=lax" in cookie.lower()
    assert "secure" in cookie.lower()
    assert "path=/admin" in cookie.lower()
    page = await admin.get("/admin/")
    assert page.status_code == 200
    assert "Dashboard" in page.text
    assert "Signed in as alice." in flashes(page.text)
    assert ("admin.login", 900, {"username": "alice"}) in await _audit_actions(admin_app)


async def _login_error(response: Any) -> str:
    found = re.search(r'id="login-error">(.*?)</div>', response.text, re.S)
    assert found, response.text
    return html.unescape(found.group(1)).strip()


async def test_wrong_password_is_a_message_on_the_form(admin: AdminClient, admin_app: Any) -> None:
    response = await admin.login("alice", "not-her-password")
    assert response.status_code == 401
    assert await _login_error(response) == "Wrong username or password."
    assert 'value="alice"' in response.text  # the username is kept
    assert (await admin.get("/admin/")).status_code == 303  # still signed out
    actions = await _audit_actions(admin_app)
    assert actions[0][0] == "admin.login_failed"
    assert actions[0][1] is None
    assert actions[0][2]["username"] == "alice"


async def test_a_user_who_is_not_staff_is_refused(admin: AdminClient, admin_app: Any) -> None:
    response = await admin.login("bob", "bob-password")
    assert response.status_code == 403
    assert "not a staff account" in await _login_error(response)
    assert "admin_session" not in response.headers.get("set-cookie", "") or (
        (await admin.get("/admin/")).status_code == 303
    )
    assert (await admin.get("/admin/models")).status_code == 303
    action, actor, after = (await _audit_actions(admin_app))[0]
    assert (action, actor, after["reason"]) == ("admin.login_failed", 901, "not staff")


async def test_backend_down_is_a_message_on_the_form(
    admin: AdminClient, omnimap: OmnimapBack, admin_app: Any
) -> None:
    omnimap.down = True
    response = await admin.login(*STAFF_LOGIN)
    assert response.status_code == 401
    assert "sign-in service failed" in await _login_error(response)
    assert (await _audit_actions(admin_app))[0][0] == "admin.login_failed"


async def test_backend_unreachable_is_a_message_on_the_form(
    database_url: str, omnimap: OmnimapBack
) -> None:
    settings = admin_settings(database_url, omnimap, backend_auth_url="http://127.0.0.1:9/login/")
    application = create_app(settings)
    async with LifespanManager(application), _client(application) as admin:
        response = await admin.login(*STAFF_LOGIN)
    assert response.status_code == 401
    assert "cannot be reached" in await _login_error(response)


async def test_slow_backend_times_out_with_a_message(
    database_url: str, omnimap: OmnimapBack
) -> None:
    omnimap.delay = 1.0
    application = create_app(admin_settings(database_url, omnimap, backend_timeout_seconds=0.2))
    async with LifespanManager(application), _client(application) as admin:
        started = time.monotonic()
        response = await admin.login(*STAFF_LOGIN)
        waited = time.monotonic() - started
    assert response.status_code == 401
    assert "did not answer in time" in await _login_error(response)
    assert waited < 1.5


@asynccontextmanager
async def _client(application: Any) -> AsyncIterator[AdminClient]:
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="https://gateway.test") as client:
        yield AdminClient(client)


async def test_pages_need_a_session(admin: AdminClient) -> None:
    response = await admin.get("/admin/models")
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/login?next=/admin/models"
    # After signing in from there, the page asked for is where you land.
    page = await admin.get("/admin/login", next="/admin/models")
    response = await admin.http.post(
        "/admin/login",
        data={
            "username": STAFF_LOGIN[0],
            "password": STAFF_LOGIN[1],
            "next": "/admin/models",
            "csrf_token": csrf_of(page.text),
        },
    )
    assert response.headers["location"] == "/admin/models"


async def test_login_never_redirects_off_site(admin: AdminClient) -> None:
    page = await admin.get("/admin/login")
    for target in ("https://evil.test/", "//evil.test/admin/", "/admin//evil.test"):
        response = await admin.http.post(
            "/admin/login",
            data={
                "username": STAFF_LOGIN[0],
                "password": STAFF_LOGIN[1],
                "next": target,
                "csrf_token": csrf_of(page.text),
            },
        )
        assert response.headers["location"] == "/admin/", target
        admin.http.cookies.clear()  # signed out again
        page = await admin.get("/admin/login")


async def test_login_form_without_csrf_token_is_refused(
    admin: AdminClient, omnimap: OmnimapBack
) -> None:
    await admin.get("/admin/login")
    response = await admin.http.post(
        "/admin/login", data={"username": STAFF_LOGIN[0], "password": STAFF_LOGIN[1]}
    )
    assert response.status_code == 403
    assert "expired" in await _login_error(response)
    assert omnimap.logins == []  # the password never left the gateway


async def test_post_without_csrf_token_is_refused(staff_admin: AdminClient, admin_app: Any) -> None:
    response = await staff_admin.http.post("/admin/models/reload", data={})
    assert response.status_code == 403
    assert "security token" in response.text
    forged = await staff_admin.http.post("/admin/models/reload", data={"csrf_token": "forged"})
    assert forged.status_code == 403
    assert await audit_entries(admin_app, action="model.reload") == []


async def test_logout_ends_the_session(staff_admin: AdminClient, admin_app: Any) -> None:
    response = await staff_admin.submit("/admin/", "/admin/logout")
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/login"
    assert (await staff_admin.get("/admin/")).status_code == 303
    assert (await _audit_actions(admin_app))[0][:2] == ("admin.logout", 900)


async def test_session_expires(staff_admin: AdminClient, monkeypatch: pytest.MonkeyPatch) -> None:
    assert (await staff_admin.get("/admin/")).status_code == 200
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 3601)
    response = await staff_admin.get("/admin/models")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/admin/login")


async def test_admin_pages_carry_security_headers(staff_admin: AdminClient) -> None:
    page = await staff_admin.get("/admin/")
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["x-frame-options"] == "DENY"
    assert "script-src 'self'" in page.headers["content-security-policy"]


async def test_unknown_admin_page_is_a_friendly_404(staff_admin: AdminClient) -> None:
    page = await staff_admin.get("/admin/no-such-page")
    assert page.status_code == 404
    assert "There is no such admin page." in page.text
    assert "Sign out" in page.text  # inside the layout, still signed in


async def test_cookie_is_not_secure_in_debug(database_url: str, omnimap: OmnimapBack) -> None:
    application = create_app(admin_settings(database_url, omnimap, debug=True))
    async with LifespanManager(application), _client(application) as admin:
        response = await admin.login(*STAFF_LOGIN)
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "secure" not in cookie


async def test_graphiql_link_carries_the_staff_token(staff_admin: AdminClient) -> None:
    page = await staff_admin.get("/admin/graphiql")
    assert page.status_code == 200
    found = re.search(r'data-headers="([^"]*)"', page.text)
    assert found
    headers = json.loads(html.unescape(found.group(1)))
    # The staff member's own token, which GraphQL accepts as staff.
    result = await GraphQLClient(staff_admin.http)(
        "{ systemConfig { key } }", auth=headers["Authorization"]
    )
    assert result.errors == []


async def test_development_token_login_only_in_debug(
    database_url: str, omnimap: OmnimapBack, admin: AdminClient
) -> None:
    # DEBUG off (the admin fixture): there is no such form and no such endpoint.
    page = await admin.get("/admin/login")
    assert "Sign in with token" not in page.text
    refused = await admin.http.post(
        "/admin/login/token", data={"token": token(1, staff=True), "csrf_token": csrf_of(page.text)}
    )
    assert refused.status_code == 404

    application = create_app(admin_settings(database_url, omnimap, debug=True))
    async with LifespanManager(application), _client(application) as dev:
        page = await dev.get("/admin/login")
        assert "Sign in with token" in page.text
        wrong = await dev.http.post(
            "/admin/login/token", data={"token": "not-a-token", "csrf_token": csrf_of(page.text)}
        )
        assert wrong.status_code == 401
        assert "That token is not valid" in await _login_error(wrong)
        signed_in = await dev.http.post(
            "/admin/login/token",
            data={
                "token": f"Bearer {token(5, staff=True)}",
                "csrf_token": csrf_of(page.text),
                "next": "/admin/models",
            },
        )
        assert signed_in.status_code == 303
        assert signed_in.headers["location"] == "/admin/models"
        assert (await dev.get("/admin/models")).status_code == 200
        actions = await _audit_actions(application)
    assert actions[0][:2] == ("admin.login", 5)
    assert actions[1][:2] == ("admin.login_failed", None)


async def test_a_development_token_of_a_plain_user_opens_the_playground_only(
    database_url: str, omnimap: OmnimapBack
) -> None:
    application = create_app(admin_settings(database_url, omnimap, debug=True))
    async with LifespanManager(application), _client(application) as dev:
        page = await dev.get("/admin/login")
        plain = token(5)
        signed_in = await dev.http.post(
            "/admin/login/token", data={"token": plain, "csrf_token": csrf_of(page.text)}
        )
        assert signed_in.status_code == 303
        assert signed_in.headers["location"] == "/admin/playground"
        playground = await dev.get("/admin/playground")
        assert playground.status_code == 200
        assert "the playground only" in " ".join(flashes(playground.text))
        found = re.search(r'data-token="([^"]*)"', playground.text)
        assert found
        assert html.unescape(found.group(1)) == plain  # the page's own token
        for path in ("/admin/", "/admin/models", "/admin/graphiql"):
            refused = await dev.get(path)
            assert refused.status_code == 403, path
            assert "Staff only" in refused.text
        # Still signed in (a staff page refused is not an expired session), until sign-out.
        assert (await dev.get("/admin/playground")).status_code == 200
        signed_out = await dev.submit("/admin/playground", "/admin/logout")
        assert signed_out.headers["location"] == "/admin/login"
        assert (await dev.get("/admin/playground")).status_code == 303
        actions = await _audit_actions(application)
    login = ("admin.login", 5, {"username": "user 5", "via": "token", "scope": "playground"})
    assert login in actions
