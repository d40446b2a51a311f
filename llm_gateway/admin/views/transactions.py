"""Everyone's ledger, newest first: filters by user, kind and UTC days, pages by cursor.

The same service call as GraphQL's ``userTransactions``.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from llm_gateway.admin import forms
from llm_gateway.admin.user_lookup import page_size, user_id_in
from llm_gateway.admin.web import Staff, page_links, render, services_of, staff_page, user_names
from llm_gateway.db.models import TokenTransaction
from llm_gateway.errors import ValidationFailed
from llm_gateway.services.money import ledger

KINDS = ledger.KINDS
FILTERS = ("user", "kind", "from", "to")


def _user_filter(raw: str, usernames: dict[int, str]) -> int | None:
    """A user id, or a username omnimap-back knows exactly (any case)."""
    if not raw:
        return None
    user_id = user_id_in(raw)
    if user_id is not None:
        return user_id
    if raw.isascii() and raw.isdigit():
        raise ValidationFailed(f"There is no user #{raw}.", field="user")
    exact = [uid for uid, name in usernames.items() if name.casefold() == raw.casefold()]
    if len(exact) == 1:
        return exact[0]
    if exact:
        raise ValidationFailed(f"Several users are named {raw!r}: filter by id.", field="user")
    if not usernames:
        raise ValidationFailed(
            "omnimap-back's user list is not answering: filter by user id instead.", field="user"
        )
    raise ValidationFailed(f"No user is named {raw!r}.", field="user")


async def _list(request: Request, staff: Staff) -> Response:
    services = services_of(request)
    params = request.query_params
    chosen = {name: params.get(name, "").strip() for name in FILTERS}
    after = params.get("after") or None
    names = await user_names(request, staff)
    rows: list[TokenTransaction] = []
    next_cursor: str | None = None
    error: str | None = None
    try:
        user_id = _user_filter(chosen["user"], names)
        kind = chosen["kind"] or None
        if kind is not None and kind not in KINDS:
            raise ValidationFailed(f"Kind must be one of {', '.join(KINDS)}.", field="kind")
        since, until = forms.date_range(chosen)
        async with services.db.read() as session:
            page = await ledger.list_transactions(
                session,
                user_id,
                first=page_size(request),
                after=after,
                kind=kind,
                max_page_size=services.settings.graphql_max_page_size,
                since=since,
                until=until,
            )
        rows = [row for _, row in page.items]
        next_cursor = page.items[-1][0] if page.has_next_page else None
    except ValidationFailed as exc:
        error = exc.message
    filtered = {name: value for name, value in chosen.items() if value}
    return render(
        request,
        "transactions.html",
        {
            "title": "Transactions",
            "chosen": chosen,
            "filtered": bool(filtered),
            "kinds": KINDS,
            "rows": rows,
            "names": names,
            "error": error,
            **page_links("/admin/transactions", filtered, after=after, next_cursor=next_cursor),
        },
        staff=staff,
        status_code=400 if error else 200,
    )


routes = [Route("/transactions", staff_page(_list), methods=["GET"])]
