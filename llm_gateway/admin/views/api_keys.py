"""Revoking a user's API key from their page (the keys are listed by ``users``).

The same service as GraphQL's ``revokeApiKey`` for staff: audited, and every instance
forgets the key at once. As every destructive action here, it asks first.
"""

from __future__ import annotations

import uuid

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from llm_gateway.admin.user_lookup import detail_path, user_label
from llm_gateway.admin.web import (
    Staff,
    actor_of,
    confirm,
    flash,
    form_of,
    redirect,
    services_of,
    staff_page,
    user_names,
)
from llm_gateway.errors import NotFound
from llm_gateway.services.money import api_keys


def _key_id(request: Request) -> uuid.UUID:
    try:
        return uuid.UUID(str(request.path_params["key_id"]))
    except ValueError:
        raise NotFound("There is no such API key.") from None


async def _revoke(request: Request, staff: Staff) -> Response:
    key_id = _key_id(request)
    form = await form_of(request)
    services = services_of(request)
    if form.get("confirm") != "yes":
        async with services.db.read() as session:
            row = await api_keys.get_api_key(session, key_id)
        who = user_label(row.user_id, await user_names(request, staff))
        back = detail_path(row.user_id) + "#api-keys"
        return confirm(
            request,
            staff,
            title=f"Revoke API key {row.name}?",
            message=f"{row.prefix}…{row.last_four} of {who} stops working at once, on every "
            "instance. This cannot be undone.",
            action=f"/admin/api-keys/{key_id}/revoke",
            button="Revoke key",
            cancel=back,
            fields=[("back", back)],
        )
    async with services.db.transaction() as session:
        row = await api_keys.revoke_api_key(
            session,
            key_id,
            actor=actor_of(request, staff),
            broker=services.broker,
            forget=services.api_keys.forget,
        )
        user_id, name, shown = row.user_id, row.name, f"{row.prefix}…{row.last_four}"
    who = user_label(user_id, await user_names(request, staff))
    flash(request, "ok", f"API key {name} ({shown}) of {who} is revoked.")
    return redirect(detail_path(user_id) + "#api-keys")


routes = [
    Route("/api-keys/{key_id}/revoke", staff_page(_revoke), methods=["POST"]),
]
