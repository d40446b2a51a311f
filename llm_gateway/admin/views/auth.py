"""Sign in through omnimap-back, sign out (every attempt is audited), and GraphiQL opened
with the signed-in staff member's token already in its headers editor."""

from __future__ import annotations

import json
import secrets
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from llm_gateway.admin.backend import LoginRefused
from llm_gateway.admin.web import (
    PREFIX,
    Staff,
    actor_of,
    backend_of,
    csrf_ok,
    current_staff,
    flash,
    redirect,
    render,
    safe_back,
    services_of,
    staff_page,
    start_session,
)
from llm_gateway.errors import Unauthenticated
from llm_gateway.services.staff import audit
from llm_gateway.services.staff.audit import Actor

MAX_USERNAME = 150


async def _audit_login(
    request: Request, user_id: int | None, action: str, after: dict[str, Any]
) -> None:
    request_id = request.scope.get("state", {}).get("request_id")
    actor = Actor(
        user_id=user_id,
        ip_address=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent"),
        request_id=request_id if isinstance(request_id, str) else None,
    )
    async with services_of(request).db.transaction() as session:
        await audit.record(session, actor, action, "admin_session", user_id, after=after)


def _login_form(
    request: Request, *, error: str | None = None, username: str = "", status_code: int = 200
) -> Response:
    if not isinstance(request.session.get("login_csrf"), str):
        request.session["login_csrf"] = secrets.token_urlsafe(32)
    return render(
        request,
        "login.html",
        {
            "error": error,
            "username": username,
            "next": safe_back(request.query_params.get("next"), PREFIX + "/"),
            "token_login": services_of(request).settings.debug,
        },
        status_code=status_code,
    )


async def login_page(request: Request) -> Response:
    if current_staff(request) is not None:
        return redirect(safe_back(request.query_params.get("next"), PREFIX + "/"))
    return _login_form(request)


async def login(request: Request) -> Response:
    form = await request.form()
    username = str(form.get("username") or "").strip()[:MAX_USERNAME]
    password = str(form.get("password") or "")
    target = safe_back(form.get("next"), PREFIX + "/")
    if not csrf_ok(form.get("csrf_token"), str(request.session.get("login_csrf") or "")):
        return _login_form(
            request,
            error="The sign-in form expired. Please try again.",
            username=username,
            status_code=403,
        )
    if not username or not password:
        return _login_form(
            request, error="Enter your username and password.", username=username, status_code=400
        )

    async def refuse(
        message: str, reason: str, status: int, user_id: int | None = None
    ) -> Response:
        await _audit_login(
            request, user_id, "admin.login_failed", {"username": username, "reason": reason}
        )
        return _login_form(request, error=message, username=username, status_code=status)

    try:
        result = await backend_of(request).login(username, password)
    except LoginRefused as exc:
        return await refuse(str(exc), str(exc), 401)
    if not result.is_staff:
        return await refuse(
            "This account is not a staff account: the admin is for staff only.",
            "not staff",
            403,
            result.user_id,
        )
    try:
        principal = services_of(request).verifier.verify(result.access)
    except Unauthenticated as exc:
        return await refuse(
            "The sign-in service issued a token this gateway cannot verify "
            "(is DJANGO_SECRET_KEY the same on both?).",
            f"token rejected: {exc.message}",
            401,
            result.user_id,
        )
    if not principal.is_staff:
        return await refuse(
            "This account is not a staff account: the admin is for staff only.",
            "token without is_staff",
            403,
            principal.user_id,
        )
    start_session(request, principal.user_id, username, result.access, principal.expires_at)
    await _audit_login(request, principal.user_id, "admin.login", {"username": username})
    flash(request, "ok", f"Signed in as {username}.")
    return redirect(target)


async def token_login(request: Request) -> Response:
    """Development only (DEBUG): sign in with an access token, no omnimap-back needed.

    ``./dev serve`` has no omnimap-back to ask; ``llm-gateway token --staff`` mints the token.
    A staff token opens the whole admin; any other user's token opens the playground only,
    so a frontend developer can try the API as a plain user.
    """
    services = services_of(request)
    if not services.settings.debug:
        return render(
            request,
            "error.html",
            {"title": "Not found", "message": "There is no such admin page."},
            status_code=404,
        )
    form = await request.form()
    if not csrf_ok(form.get("csrf_token"), str(request.session.get("login_csrf") or "")):
        return _login_form(
            request, error="The sign-in form expired. Please try again.", status_code=403
        )
    raw = str(form.get("token") or "").strip().removeprefix("Bearer ").strip()
    try:
        principal = services.verifier.verify(raw)
    except Unauthenticated as exc:
        await _audit_login(request, None, "admin.login_failed", {"reason": f"token: {exc.message}"})
        return _login_form(
            request, error=f"That token is not valid: {exc.message}", status_code=401
        )
    name = f"user {principal.user_id}"
    start_session(request, principal.user_id, name, raw, principal.expires_at)
    if not principal.is_staff:
        await _audit_login(
            request,
            principal.user_id,
            "admin.login",
            {"username": name, "via": "token", "scope": "playground"},
        )
        flash(
            request,
            "ok",
            f"Signed in as {name} with a development token: not staff, so the playground only.",
        )
        return redirect(PREFIX + "/playground")
    await _audit_login(
        request, principal.user_id, "admin.login", {"username": name, "via": "token"}
    )
    flash(request, "ok", f"Signed in as {name} with a development token.")
    return redirect(safe_back(form.get("next"), PREFIX + "/"))


async def _logout(request: Request, staff: Staff) -> Response:
    async with services_of(request).db.transaction() as session:
        await audit.record(
            session, actor_of(request, staff), "admin.logout", "admin_session", staff.user_id
        )
    request.session.clear()
    flash(request, "ok", "Signed out.")
    return redirect(PREFIX + "/login")


async def _graphiql(request: Request, staff: Staff) -> Response:
    headers = json.dumps({"Authorization": f"Bearer {staff.token}"}, indent=2)
    return render(
        request,
        "graphiql.html",
        {"title": "GraphiQL", "headers": headers, "target": "/graphql"},
        staff=staff,
    )


routes = [
    Route("/graphiql", staff_page(_graphiql), methods=["GET"]),
    Route("/login", login_page, methods=["GET"]),
    Route("/login", login, methods=["POST"]),
    Route("/login/token", token_login, methods=["POST"]),
    Route("/logout", staff_page(_logout, playground=True), methods=["POST"]),
]
