"""Users and balances: the list, one user's balance and ledger, top-ups, adjustments, limits.

The same services as GraphQL's ``users``, ``userBalance``, ``topUpBalance``,
``adjustBalance`` and ``setBalanceLimits``; usernames come from omnimap-back when it answers.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from llm_gateway.admin import forms
from llm_gateway.admin.user_lookup import (
    MAX_NAME_MATCHES,
    detail_path,
    matching_users,
    page_size,
    user_id_in,
    user_label,
)
from llm_gateway.admin.web import (
    Staff,
    actor_of,
    backend_of,
    confirm,
    flash,
    form_of,
    names_of,
    page_links,
    redirect,
    render,
    services_of,
    staff_page,
    user_names,
)
from llm_gateway.db.base import utcnow
from llm_gateway.db.models import Balance, TokenTransaction
from llm_gateway.enums import LedgerKind
from llm_gateway.errors import NotFound, ValidationFailed
from llm_gateway.services.money import account_search, api_keys, balances, ledger
from llm_gateway.services.money.balances import BalanceView


def _path_user(request: Request) -> int:
    user_id = user_id_in(str(request.path_params["user_id"]))
    if user_id is None:
        raise NotFound("There is no such user.")
    return user_id


# -- the list --------------------------------------------------------------------------------


async def _list(request: Request, staff: Staff) -> Response:
    services = services_of(request)
    query = request.query_params.get("q", "").strip()
    after = request.query_params.get("after") or None
    known = await backend_of(request).users(staff.token)
    names = names_of(known)
    by_name = bool(query) and not (query.isascii() and query.isdigit())
    wanted: list[int] = []
    too_many = False
    accounts: list[Balance] = []
    next_cursor: str | None = None
    error: str | None = None
    views: list[BalanceView] = []
    try:
        async with services.db.read() as session:
            if by_name:
                wanted = matching_users(known, query)
                too_many = len(wanted) > MAX_NAME_MATCHES
                wanted = wanted[:MAX_NAME_MATCHES]
                accounts = await account_search.accounts_of(session, wanted)
            else:
                if query and user_id_in(query) is None:
                    raise ValidationFailed(f"There is no user #{query}.", field="q")
                page = await balances.list_accounts(
                    session,
                    first=page_size(request),
                    after=after,
                    search=query or None,
                    max_page_size=services.settings.graphql_max_page_size,
                )
                accounts = [row for _, row in page.items]
                if page.has_next_page:
                    next_cursor = page.items[-1][0]
                wanted = [int(query)] if query else []
            if accounts:
                views = await balances.views_of(session, accounts, services.policy)
    except ValidationFailed as exc:
        error = exc.message
    with_balance = {view.user_id for view in views}
    # Found on omnimap-back but never seen by the gateway: a top-up opens their account.
    unopened = [user_id for user_id in wanted if user_id not in with_balance and user_id in known]
    return render(
        request,
        "users.html",
        {
            "title": "Users",
            "query": query,
            "by_name": by_name,
            "names_known": bool(known),
            "views": views,
            "unopened": unopened,
            "too_many": too_many,
            "max_matches": MAX_NAME_MATCHES,
            "names": names,
            "error": error,
            **page_links(
                "/admin/users",
                {"q": query} if query else {},
                after=after,
                next_cursor=next_cursor,
            ),
        },
        staff=staff,
        status_code=400 if error else 200,
    )


# -- one user --------------------------------------------------------------------------------


async def _detail(request: Request, staff: Staff) -> Response:
    user_id = _path_user(request)
    after = request.query_params.get("after") or None
    services = services_of(request)
    known = await backend_of(request).users(staff.token)
    names = names_of(known)
    view: BalanceView | None = None
    rows: list[TokenTransaction] = []
    next_cursor: str | None = None
    error: str | None = None
    async with services.db.read() as session:
        keys = await api_keys.list_api_keys(session, user_id)
        try:
            view = await balances.existing_balance(session, user_id, services.policy)
        except NotFound:
            if user_id not in known and not keys:
                raise
        if view is not None:
            try:
                page = await ledger.list_transactions(
                    session,
                    user_id,
                    first=page_size(request),
                    after=after,
                    kind=None,
                    max_page_size=services.settings.graphql_max_page_size,
                )
            except ValidationFailed as exc:
                error = exc.message
            else:
                rows = [row for _, row in page.items]
                next_cursor = page.items[-1][0] if page.has_next_page else None
    path = detail_path(user_id)
    return render(
        request,
        "user_detail.html",
        {
            "title": user_label(user_id, names),
            "user_id": user_id,
            "account": known.get(user_id),
            "view": view,
            "initial_balance": services.policy.initial_balance,
            "rows": rows,
            "api_keys": keys,
            "now": utcnow(),
            "names": names,
            "error": error,
            "back": path,
            "topup_key": uuid.uuid4().hex,
            "adjust_key": uuid.uuid4().hex,
            **page_links(path, {}, after=after, next_cursor=next_cursor, anchor="ledger"),
        },
        staff=staff,
        status_code=400 if error else 200,
    )


async def _change(
    request: Request, staff: Staff, form: Mapping[str, str], user_id: int, kind: str
) -> Response:
    """A top-up or an adjustment, as ``topUpBalance`` / ``adjustBalance`` make it."""
    amount = forms.whole(form, "amount", "Amount")
    reason = forms.text(form, "reason", "Reason")
    services = services_of(request)
    async with services.db.transaction() as session:
        change = await ledger.change_balance(
            session,
            actor_of(request, staff),
            user_id,
            amount,
            kind=kind,
            reason=reason,
            idempotency_key=forms.optional_text(form, "idempotency_key"),
            policy=services.policy,
            broker=services.broker,
        )
        balance_after = change.transaction.balance_after
    who = user_label(user_id, await user_names(request, staff))
    what = "top-up" if kind == LedgerKind.TOPUP else "adjustment"
    if not change.created:
        flash(
            request,
            "ok",
            f"This {what} of {who} was already applied (the form was sent twice); "
            "nothing was changed again.",
        )
        return redirect(detail_path(user_id))
    moved = f"Added {amount:,} tokens to" if amount > 0 else f"Took {-amount:,} tokens from"
    flash(request, "ok", f"{moved} {who}. Balance now {balance_after:,}.")
    return redirect(detail_path(user_id))


async def _top_up(request: Request, staff: Staff) -> Response:
    user_id = _path_user(request)
    return await _change(request, staff, await form_of(request), user_id, "topup")


async def _adjust(request: Request, staff: Staff) -> Response:
    user_id = _path_user(request)
    form = await form_of(request)
    amount = forms.whole(form, "amount", "Amount")
    if amount < 0 and form.get("confirm") != "yes":
        reason = forms.text(form, "reason", "Reason")
        who = user_label(user_id, await user_names(request, staff))
        return confirm(
            request,
            staff,
            title="Take tokens away?",
            message=f"Take {-amount:,} tokens from {who}? Reason: {reason}",
            action=f"{detail_path(user_id)}/adjust",
            button=f"Take {-amount:,} tokens",
            cancel=detail_path(user_id),
            fields=[
                (name, form.get(name, ""))
                for name in ("amount", "reason", "idempotency_key", "back")
            ],
        )
    return await _change(request, staff, form, user_id, "adjustment")


def _limit_text(value: int | None) -> str:
    return "no limit" if value is None else f"{value:,}"


async def _limits(request: Request, staff: Staff) -> Response:
    """Both limits as the form shows them; a blank one is removed."""
    user_id = _path_user(request)
    form = await form_of(request)
    daily = forms.optional_whole(form, "daily_limit", "Daily limit")
    monthly = forms.optional_whole(form, "monthly_limit", "Monthly limit")
    services = services_of(request)
    async with services.db.transaction() as session:
        await ledger.set_limits(
            session,
            actor_of(request, staff),
            user_id,
            daily_limit=daily,
            monthly_limit=monthly,
            policy=services.policy,
            broker=services.broker,
        )
    who = user_label(user_id, await user_names(request, staff))
    flash(
        request,
        "ok",
        f"Limits of {who} saved: daily {_limit_text(daily)}, monthly {_limit_text(monthly)}.",
    )
    return redirect(detail_path(user_id))


routes = [
    Route("/users", staff_page(_list), methods=["GET"]),
    Route("/users/{user_id}", staff_page(_detail), methods=["GET"]),
    Route("/users/{user_id}/topup", staff_page(_top_up), methods=["POST"]),
    Route("/users/{user_id}/adjust", staff_page(_adjust), methods=["POST"]),
    Route("/users/{user_id}/limits", staff_page(_limits), methods=["POST"]),
]
