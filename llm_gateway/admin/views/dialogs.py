"""Every user's dialogs: the filtered list, one dialog's messages, and deleting either.

The list is GraphQL's ``allDialogs`` (``reports.list_all_dialogs``), the messages are its
``StaffDialog.messages`` (``reports.message_pages``); deletions go through
``services.moderation``, each asking for a confirmation first.
"""

from __future__ import annotations

import uuid

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from llm_gateway.admin import forms
from llm_gateway.admin.user_lookup import page_size, user_id_in
from llm_gateway.admin.web import (
    Staff,
    actor_of,
    confirm,
    flash,
    form_of,
    page_links,
    redirect,
    render,
    services_of,
    staff_page,
    user_names,
)
from llm_gateway.db.models import Dialog, Message
from llm_gateway.errors import Conflict, NotFound, ValidationFailed
from llm_gateway.services.catalog import listing as catalog
from llm_gateway.services.staff import moderation, reports

FILTERS = ("user", "model", "from", "to", "show")
SHOWN = {"live": False, "deleted": True, "all": None}
"""The ``show`` filter as ``list_all_dialogs``'s ``deleted`` argument."""
MESSAGES_PER_PAGE = 50


def _uuid_in(raw: object, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(raw))
    except ValueError:
        raise NotFound(f"There is no such {what}.") from None


def detail_path(dialog_id: uuid.UUID) -> str:
    return f"/admin/dialogs/{dialog_id}"


def _dialog_label(dialog: Dialog, names: dict[int, str]) -> str:
    owner = names.get(dialog.user_id)
    who = f"{owner} (#{dialog.user_id})" if owner else f"user #{dialog.user_id}"
    title = f"dialog “{dialog.title}”" if dialog.title else "untitled dialog"
    return f"{title} of {who}"


async def _list(request: Request, staff: Staff) -> Response:
    services = services_of(request)
    params = request.query_params
    chosen = {name: params.get(name, "").strip() for name in FILTERS}
    chosen["show"] = chosen["show"] if chosen["show"] in SHOWN else "live"
    after = params.get("after") or None
    names = await user_names(request, staff)
    rows: list[Dialog] = []
    counts: dict[uuid.UUID, int] = {}
    models: dict[int, str] = {}
    model_names: list[str] = []
    next_cursor: str | None = None
    error: str | None = None
    async with services.db.read() as session:
        model_names = [
            row.name for row in await catalog.list_models(session, include_disabled=True)
        ]
        try:
            forms.no_nul(chosen)
            user_id: int | None = None
            if chosen["user"]:
                user_id = user_id_in(chosen["user"])
                if user_id is None:
                    raise ValidationFailed("User id must be a positive whole number.")
            since, until = forms.date_range(chosen)
            page = await reports.list_all_dialogs(
                session,
                first=page_size(request),
                after=after,
                user_id=user_id,
                model=chosen["model"] or None,
                since=since,
                until=until,
                deleted=SHOWN[chosen["show"]],
                max_page_size=services.settings.graphql_max_page_size,
            )
        except ValidationFailed as exc:
            error = exc.message
        else:
            rows = [row for _, row in page.items]
            next_cursor = page.items[-1][0] if page.has_next_page else None
            counts = await moderation.message_counts(session, [row.id for row in rows])
            found = await catalog.models_by_ids(session, list({row.model_id for row in rows}))
            models = {model_id: model.name for model_id, model in found.items()}
    filtered = {
        name: value
        for name, value in chosen.items()
        if value and not (name == "show" and value == "live")
    }
    return render(
        request,
        "dialogs.html",
        {
            "title": "Dialogs",
            "chosen": chosen,
            "filtered": bool(filtered),
            "model_names": model_names,
            "rows": rows,
            "counts": counts,
            "models": models,
            "names": names,
            "error": error,
            **page_links("/admin/dialogs", filtered, after=after, next_cursor=next_cursor),
        },
        staff=staff,
        status_code=400 if error else 200,
    )


async def _detail(request: Request, staff: Staff) -> Response:
    dialog_id = _uuid_in(request.path_params["dialog_id"], "dialog")
    after = request.query_params.get("after") or None
    services = services_of(request)
    names = await user_names(request, staff)
    messages: list[Message] = []
    next_cursor: str | None = None
    error: str | None = None
    async with services.db.read() as session:
        dialog = await moderation.get_any_dialog(session, dialog_id)
        model = (await catalog.models_by_ids(session, [dialog.model_id])).get(dialog.model_id)
        total = (await moderation.message_counts(session, [dialog.id])).get(dialog.id, 0)
        try:
            key = reports.message_page_key(
                dialog.id,
                min(MESSAGES_PER_PAGE, services.settings.graphql_max_page_size),
                after,
                max_page_size=services.settings.graphql_max_page_size,
            )
            page = (await reports.message_pages(session, [key]))[key]
        except ValidationFailed as exc:
            error = exc.message
        else:
            messages = [row for _, row in page.items]
            next_cursor = page.items[-1][0] if page.has_next_page else None
    path = detail_path(dialog.id)
    return render(
        request,
        "dialog_detail.html",
        {
            "title": dialog.title or "Untitled dialog",
            "dialog": dialog,
            "model_name": model.name if model else f"#{dialog.model_id}",
            "total": total,
            "messages": messages,
            "names": names,
            "error": error,
            "back": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
            **page_links(path, {}, after=after, next_cursor=next_cursor, anchor="messages"),
        },
        staff=staff,
        status_code=400 if error else 200,
    )


async def _delete_dialog(request: Request, staff: Staff) -> Response:
    dialog_id = _uuid_in(request.path_params["dialog_id"], "dialog")
    form = await form_of(request)
    services = services_of(request)
    names = await user_names(request, staff)
    path = detail_path(dialog_id)
    if form.get("confirm") != "yes":
        async with services.db.read() as session:
            dialog = await moderation.get_any_dialog(session, dialog_id)
            total = (await moderation.message_counts(session, [dialog.id])).get(dialog.id, 0)
        if dialog.deleted_at is not None:
            raise Conflict("This dialog is already deleted.")
        count = f"{total:,} message{'' if total == 1 else 's'}"
        return confirm(
            request,
            staff,
            title="Delete this dialog?",
            message=f"Delete {_dialog_label(dialog, names)}, with {count}? "
            "Its owner will no longer see it; staff still can. Charges stay in the ledger.",
            action=f"{path}/delete",
            button="Delete dialog",
            cancel=path,
            fields=[("back", path)],
        )
    async with services.db.transaction() as session:
        dialog = await moderation.delete_dialog(session, actor_of(request, staff), dialog_id)
        label = _dialog_label(dialog, names)
    flash(request, "ok", f"Deleted {label}.")
    return redirect("/admin/dialogs")


async def _delete_message(request: Request, staff: Staff) -> Response:
    dialog_id = _uuid_in(request.path_params["dialog_id"], "dialog")
    message_id = _uuid_in(request.path_params["message_id"], "message")
    form = await form_of(request)
    services = services_of(request)
    path = detail_path(dialog_id)
    action = f"{path}/messages/{message_id}/delete"
    if form.get("confirm") != "yes":
        async with services.db.read() as session:
            message = await moderation.get_message(session, dialog_id, message_id)
        text = " ".join(message.content.split())
        preview = text[:80] + ("…" if len(text) > 80 else "")
        return confirm(
            request,
            staff,
            title="Delete this message?",
            message=f"Delete this {message.role} message"
            f"{f' (“{preview}”)' if preview else ''} for good? "
            "It cannot be brought back; its charge stays in the ledger.",
            action=action,
            button="Delete message",
            cancel=f"{path}#message-{message_id}",
            fields=[("back", path)],
        )
    async with services.db.transaction() as session:
        message = await moderation.delete_message(
            session, actor_of(request, staff), dialog_id, message_id
        )
        role = message.role
    flash(request, "ok", f"Deleted the {role} message.")
    return redirect(path)


routes = [
    Route("/dialogs", staff_page(_list), methods=["GET"]),
    Route("/dialogs/{dialog_id}", staff_page(_detail), methods=["GET"]),
    Route("/dialogs/{dialog_id}/delete", staff_page(_delete_dialog), methods=["POST"]),
    Route(
        "/dialogs/{dialog_id}/messages/{message_id}/delete",
        staff_page(_delete_message),
        methods=["POST"],
    ),
]
