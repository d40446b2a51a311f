"""Runtime settings: the known keys and any set ones; set, rotate (a secret's new value)
and reset, each change taking effect on every instance at once.

The same service calls as GraphQL's ``systemConfig``, ``setConfig`` and ``deleteConfig``.
Secret values reach the page only as ``config.list_config`` masks them; the form never
echoes a value typed into a secret field.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from llm_gateway.admin import forms
from llm_gateway.admin.web import (
    Staff,
    actor_of,
    confirm,
    flash,
    form_of,
    redirect,
    render,
    services_of,
    staff_page,
    user_names,
)
from llm_gateway.errors import NotFound, ValidationFailed
from llm_gateway.services.staff import runtime_settings as config

PATH = "/admin/settings"
LIMIT_FIELDS = {
    "INITIAL_TOKEN_BALANCE": "initial_balance",
    "MAX_CONTENT_LENGTH": "max_content_length",
    "RATE_LIMIT_REQUESTS": "rate_limit_requests",
    "RATE_LIMIT_WINDOW": "rate_limit_window",
}
"""Known whole-number keys and the ``Limits`` field showing the value in effect."""


@dataclass(frozen=True, slots=True)
class Row:
    """One setting as the page shows it: known or custom, set or not."""

    key: str
    description: str
    secret: bool
    known: bool
    minimum: int | None
    view: config.ConfigView | None
    in_effect: int | None


def _rows(views: list[config.ConfigView], limits: config.Limits) -> list[Row]:
    stored = {view.key: view for view in views}
    rows = [
        Row(
            key=key,
            description=known.description,
            secret=known.secret,
            known=True,
            minimum=known.minimum,
            view=stored.get(key),
            in_effect=getattr(limits, LIMIT_FIELDS[key]) if key in LIMIT_FIELDS else None,
        )
        for key, known in config.KNOWN_KEYS.items()
    ]
    rows.extend(
        Row(view.key, view.description, view.is_secret, False, None, view, None)
        for view in views
        if view.key not in config.KNOWN_KEYS
    )
    return rows


def anchor(key: str) -> str:
    return f"{PATH}#setting-{key}"


async def _page(request: Request, staff: Staff) -> Response:
    services = services_of(request)
    async with services.db.read() as session:
        views = await config.list_config(session, services.cipher)
    return render(
        request,
        "settings.html",
        {
            "title": "Settings",
            "rows": _rows(views, services.limits),
            "names": await user_names(request, staff),
            "back": PATH,
        },
        staff=staff,
    )


async def _set(request: Request, staff: Staff) -> Response:
    form = await form_of(request)
    services = services_of(request)
    key = form.get("key", "")
    known = config.KNOWN_KEYS.get(key.upper())
    try:
        key = forms.text(form, "key", "Key")
        value = forms.text(form, "value", f"A value for {key}")
        async with services.db.transaction() as session:
            view = await config.set_config(
                session,
                actor_of(request, staff),
                services.cipher,
                key,
                value,
                # A known key's secrecy is fixed; a custom one is secret when ticked.
                secret=None if known else forms.checked(form, "secret"),
                description=None if known else forms.optional_text(form, "description"),
                broker=services.broker,
                refresh=services.refresh_config,  # this instance at once; the others on notice
            )
    except ValidationFailed as exc:
        flash(request, "error", exc.message)
        return redirect(anchor(key) if known else PATH)
    if not view.is_secret:
        flash(request, "ok", f"{view.key} set to {view.value}.")
    elif form.get("rotate") == "yes":
        flash(request, "ok", f"{view.key} rotated: the new value shows as {view.value}.")
    else:
        flash(request, "ok", f"{view.key} saved: it shows as {view.value}.")
    return redirect(anchor(view.key))


async def _delete(request: Request, staff: Staff) -> Response:
    form = await form_of(request)
    services = services_of(request)
    key = forms.text(form, "key", "Key")
    known = key in config.KNOWN_KEYS
    if form.get("confirm") != "yes":
        return confirm(
            request,
            staff,
            title=f"Reset {key}?" if known else f"Delete {key}?",
            message=(
                f"Remove the value set for {key}? The environment's value (or the built-in "
                "default) applies again, on every instance."
                if known
                else f"Delete the setting {key}? Nothing reads it once it is gone."
            ),
            action=f"{PATH}/delete",
            button="Reset to default" if known else "Delete setting",
            cancel=anchor(key) if known else PATH,
            fields=[("key", key), ("back", PATH)],
        )
    try:
        async with services.db.transaction() as session:
            view = await config.delete_config(
                session,
                actor_of(request, staff),
                services.cipher,
                key,
                broker=services.broker,
                refresh=services.refresh_config,
            )
    except NotFound:
        flash(request, "error", f"{key} is not set: there is nothing to reset.")
        return redirect(PATH)
    flash(
        request,
        "ok",
        f"{view.key} reset: the default applies again." if known else f"{view.key} deleted.",
    )
    return redirect(anchor(view.key) if known else PATH)


routes = [
    Route("/settings", staff_page(_page), methods=["GET"]),
    Route("/settings", staff_page(_set), methods=["POST"]),
    Route("/settings/delete", staff_page(_delete), methods=["POST"]),
]
