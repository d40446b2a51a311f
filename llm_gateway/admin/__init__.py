"""The admin web UI at ``/admin``: server-rendered pages over the same services as GraphQL.

``build_admin`` makes the Starlette sub-application; the main app's lifespan hands it the
services and an omnimap-back client through ``admin.state``.
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from llm_gateway.admin.backend import Backend
from llm_gateway.admin.views import (
    agents,
    api_keys,
    audit_log,
    auth,
    dashboard,
    dialogs,
    models,
    playground,
    settings_page,
    transactions,
    users,
)
from llm_gateway.admin.web import PREFIX, render, signed_in
from llm_gateway.settings import Settings

SESSION_COOKIE = "admin_session"

__all__ = ["Backend", "build_admin"]


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    staff = signed_in(request) if "session" in request.scope else None
    if exc.status_code == 404:
        title, message = "Not found", "There is no such admin page."
    elif exc.status_code == 405:
        title, message = "Not allowed", "That address does not take this kind of request."
    else:
        title, message = "Request failed", str(exc.detail)
    return render(
        request,
        "error.html",
        {"title": title, "message": message},
        staff=staff,
        status_code=exc.status_code,
    )


def build_admin(settings: Settings) -> Starlette:
    # Its own key, derived from the JWT secret: a session cookie is never a valid token.
    key = hmac.new(
        settings.jwt_secret().encode(), b"llm-gateway admin session", hashlib.sha256
    ).hexdigest()
    return Starlette(
        routes=[
            *auth.routes,
            *dashboard.routes,
            *models.routes,
            *agents.routes,
            *users.routes,
            *api_keys.routes,
            *transactions.routes,
            *dialogs.routes,
            *settings_page.routes,
            *audit_log.routes,
            *playground.routes,
            Mount(
                "/static",
                StaticFiles(directory=str(Path(__file__).parent / "static")),
                name="static",
            ),
        ],
        middleware=[
            Middleware(
                SessionMiddleware,
                secret_key=key,
                session_cookie=SESSION_COOKIE,
                max_age=settings.admin_session_seconds,
                path=PREFIX,
                same_site="lax",
                https_only=not settings.debug,
            )
        ],
        exception_handlers={HTTPException: _http_error},
    )
