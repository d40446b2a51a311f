"""What every admin page shares: the staff session, CSRF, rendering, flash messages.

The session is Starlette's signed cookie (HttpOnly, SameSite=Lax, Secure unless DEBUG) and
holds the staff member's access token, re-verified on every request: an expired or
non-staff token, or a session older than ``ADMIN_SESSION_SECONDS``, sends them to the login
page. Every POST must carry the session's CSRF token in its form.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from llm_gateway.admin.backend import Backend, BackendUser
from llm_gateway.errors import GatewayError, NotFound, Unauthenticated
from llm_gateway.observability.logs import bind_user
from llm_gateway.services.container import Services
from llm_gateway.services.staff.audit import Actor

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
PREFIX = "/admin"
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
}


@dataclass(frozen=True, slots=True)
class Staff:
    """The signed-in staff member, from a session whose token still verifies.

    ``playground_only``: not staff but signed in with a development token under DEBUG;
    such a session opens the playground (and signs out), no other admin page.
    """

    user_id: int
    username: str
    token: str
    csrf: str
    playground_only: bool = False


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def backend_of(request: Request) -> Backend:
    backend: Backend = request.app.state.backend
    return backend


def actor_of(request: Request, staff: Staff) -> Actor:
    request_id = request.scope.get("state", {}).get("request_id")
    return Actor(
        user_id=staff.user_id,
        ip_address=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent"),
        request_id=request_id if isinstance(request_id, str) else None,
    )


def start_session(request: Request, user_id: int, username: str, token: str, exp: float) -> None:
    """Replace whatever session there was (a fresh CSRF token too: no fixation)."""
    lifetime = services_of(request).settings.admin_session_seconds
    request.session.clear()
    request.session.update(
        {
            "uid": user_id,
            "name": username,
            "token": token,
            "csrf": secrets.token_urlsafe(32),
            "until": min(time.time() + lifetime, exp),
        }
    )


def signed_in(request: Request) -> Staff | None:
    """Whoever the session is for while its token still verifies: a staff member, or
    (DEBUG only) a user who signed in with a development token, for the playground."""
    session = request.session
    token, until = session.get("token"), session.get("until")
    if not isinstance(token, str) or not isinstance(until, int | float) or time.time() > until:
        return None
    services = services_of(request)
    try:
        principal = services.verifier.verify(token)
    except Unauthenticated:
        return None
    if principal.user_id != session.get("uid"):
        return None
    if not principal.is_staff and not services.settings.debug:
        return None
    bind_user(principal.user_id)
    return Staff(
        user_id=principal.user_id,
        username=str(session.get("name") or principal.user_id),
        token=token,
        csrf=str(session.get("csrf")),
        playground_only=not principal.is_staff,
    )


def current_staff(request: Request) -> Staff | None:
    """The signed-in staff member (a playground-only session is not one)."""
    user = signed_in(request)
    return user if user is not None and not user.playground_only else None


def flash(request: Request, kind: str, text: str) -> None:
    """A message shown once, on the next page (kind: ok | error)."""
    # Reassigned, not appended in place: the session only saves keys that are set.
    request.session["flash"] = [*request.session.get("flash", []), [kind, text]]


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    staff: Staff | None = None,
    status_code: int = 200,
) -> Response:
    flashes = request.session.pop("flash", []) if "session" in request.scope else []
    response = TEMPLATES.TemplateResponse(
        request,
        template,
        {
            "staff": staff,
            "csrf": staff.csrf if staff else request.session.get("login_csrf", ""),
            "flashes": flashes,
            "path": request.url.path,
            **(context or {}),
        },
        status_code=status_code,
    )
    response.headers.update(SECURITY_HEADERS)
    return response


def redirect(path: str) -> Response:
    response = RedirectResponse(path, status_code=303)
    response.headers.update(SECURITY_HEADERS)
    return response


def safe_back(wanted: object, fallback: str) -> str:
    """Where to go after a POST or a login: a path of ours, never another site."""
    if (
        isinstance(wanted, str)
        and (wanted == PREFIX or wanted.startswith(PREFIX + "/"))
        and "//" not in wanted
        and "\\" not in wanted
    ):
        return wanted
    return fallback


def page_links(
    path: str,
    filters: Mapping[str, str],
    *,
    after: str | None,
    next_cursor: str | None,
    anchor: str = "",
) -> dict[str, str | None]:
    """The pager's links: the next page with the same filters and, past the first page,
    the first one (``next_url`` / ``first_url`` for the ``pager`` macro)."""

    def url(params: Mapping[str, str]) -> str:
        query = urlencode(params)
        return path + (f"?{query}" if query else "") + (f"#{anchor}" if anchor else "")

    return {
        "next_url": url({**filters, "after": next_cursor}) if next_cursor else None,
        "first_url": url(filters) if after else None,
    }


def csrf_ok(given: object, expected: str) -> bool:
    return isinstance(given, str) and bool(expected) and hmac.compare_digest(given, expected)


Handler = Callable[[Request, Staff], Awaitable[Response]]


def staff_page(
    handler: Handler, *, playground: bool = False
) -> Callable[[Request], Awaitable[Response]]:
    """Signed-in staff only (with ``playground``, a playground-only session too); POSTs
    need the CSRF token; expected errors become messages."""

    async def endpoint(request: Request) -> Response:
        staff = signed_in(request)
        if staff is None:
            if request.session.get("token"):
                request.session.clear()
                flash(request, "error", "Your session has expired. Please sign in again.")
            target = request.url.path if request.method == "GET" else PREFIX + "/"
            return redirect(f"{PREFIX}/login?next={quote(target)}")
        if staff.playground_only and not playground:
            message = "This page is for staff. Your development token opens the playground only."
            context = {"title": "Staff only", "message": message}
            return render(request, "error.html", context, staff=staff, status_code=403)
        back: object = None
        if request.method == "POST":
            form = await request.form()
            back = form.get("back")
            if not csrf_ok(form.get("csrf_token"), staff.csrf):
                return render(
                    request,
                    "error.html",
                    {
                        "title": "Form expired",
                        "message": "This form was not sent from this admin session "
                        "(its security token is missing or out of date). "
                        "Go back, reload the page and try again.",
                    },
                    staff=staff,
                    status_code=403,
                )
        try:
            return await handler(request, staff)
        except NotFound as exc:
            return render(
                request,
                "error.html",
                {"title": "Not found", "message": exc.message},
                staff=staff,
                status_code=404,
            )
        except GatewayError as exc:
            if request.method != "POST":
                raise
            flash(request, "error", exc.message)
            return redirect(safe_back(back, PREFIX + "/"))

    return endpoint


def confirm(
    request: Request,
    staff: Staff,
    *,
    title: str,
    message: str,
    action: str,
    button: str,
    cancel: str,
    fields: Iterable[tuple[str, str]] = (),
) -> Response:
    """The page that asks before anything destructive; its form re-posts with confirm=yes."""
    return render(
        request,
        "confirm.html",
        {
            "title": title,
            "message": message,
            "action": action,
            "button": button,
            "cancel": cancel,
            "fields": list(fields),
        },
        staff=staff,
    )


async def form_of(request: Request) -> dict[str, str]:
    """The posted form as plain strings (stripped), file fields ignored."""
    form = await request.form()
    return {key: value.strip() for key, value in form.items() if isinstance(value, str)}


def names_of(users: Mapping[int, BackendUser]) -> dict[int, str]:
    """Id → username, for the ``user`` macro (users without one show as ids)."""
    return {user_id: user.username for user_id, user in users.items() if user.username}


async def user_names(request: Request, staff: Staff) -> dict[int, str]:
    """Usernames from omnimap-back when it answers; an empty map (ids shown) when not."""
    return names_of(await backend_of(request).users(staff.token))
