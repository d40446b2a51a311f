"""Models: list, create, edit, enable or disable, and reload on every instance."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from llm_gateway.admin import forms
from llm_gateway.admin.web import (
    Staff,
    actor_of,
    flash,
    form_of,
    redirect,
    render,
    services_of,
    staff_page,
)
from llm_gateway.enums import Provider
from llm_gateway.errors import NotFound, ValidationFailed
from llm_gateway.services.catalog import listing as catalog
from llm_gateway.services.catalog import models as models_admin

PROVIDERS = tuple(Provider)
CACHE_FIELDS = {
    "cache_read_price_per_1k": "Cache read price",
    "cache_write_price_per_1k": "Cache write price",
    "cache_read_weight": "Cache read weight",
    "cache_write_weight": "Cache write weight",
}


def _path_name(request: Request) -> str:
    """The model named in the path; one with a NUL (``%00``) cannot exist, on any database."""
    name = str(request.path_params["name"])
    if forms.NUL in name:
        raise NotFound(f"Model {name!r} does not exist.")
    return name


async def _list(request: Request, staff: Staff) -> Response:
    async with services_of(request).db.read() as session:
        rows = await catalog.list_models(session, include_disabled=True)
        names = {row.id: row.name for row in rows}
    return render(
        request,
        "models.html",
        {"title": "Models", "models": rows, "names": names},
        staff=staff,
    )


def _draft(form: Mapping[str, str], name: str) -> models_admin.ModelDraft:
    """The model the form describes; raises ValidationFailed naming a bad field."""
    provider = forms.text(form, "provider", "Provider")
    if provider not in PROVIDERS:
        raise ValidationFailed(f"Provider must be one of {', '.join(PROVIDERS)}.", field="provider")
    return models_admin.ModelDraft(
        name=name,
        provider=provider,
        upstream_model=forms.text(form, "upstream_model", "Upstream model"),
        context_window=forms.whole(form, "context_window", "Context window"),
        max_output_tokens=forms.whole(form, "max_output_tokens", "Max output tokens"),
        display_name=forms.optional_text(form, "display_name"),
        prompt_price_per_1k=forms.decimal(form, "prompt_price_per_1k", "Prompt price"),
        completion_price_per_1k=forms.decimal(form, "completion_price_per_1k", "Completion price"),
        prompt_weight=forms.decimal(form, "prompt_weight", "Prompt weight"),
        completion_weight=forms.decimal(form, "completion_weight", "Completion weight"),
        **{
            column: forms.optional_decimal(form, column, label)
            for column, label in CACHE_FIELDS.items()
        },
        enabled=forms.checked(form, "enabled"),
        is_default=forms.checked(form, "is_default"),
        fallback_model=forms.optional_text(form, "fallback_model"),
    )


def _patch(draft: models_admin.ModelDraft) -> models_admin.ModelPatch:
    """Every field the form shows, as an update (the name is the model's address); a cache
    price or weight left blank is the prompt's at the provider's published ratio."""
    return models_admin.ModelPatch(
        display_name=draft.display_name,
        provider=draft.provider,
        upstream_model=draft.upstream_model,
        context_window=draft.context_window,
        max_output_tokens=draft.max_output_tokens,
        **models_admin.amounts_of(draft),
        enabled=draft.enabled,
        is_default=draft.is_default,
        fallback_model=draft.fallback_model,
    )


async def _form_page(
    request: Request,
    staff: Staff,
    *,
    values: Mapping[str, object],
    editing: str | None,
    error: str | None = None,
) -> Response:
    async with services_of(request).db.read() as session:
        others = [
            row.name
            for row in await catalog.list_models(session, include_disabled=True)
            if row.name != editing
        ]
    return render(
        request,
        "model_form.html",
        {
            "title": f"Edit model {editing}" if editing else "New model",
            "editing": editing,
            "values": values,
            "providers": PROVIDERS,
            "others": others,
            "error": error,
        },
        staff=staff,
        status_code=400 if error else 200,
    )


NEW_MODEL = {
    "provider": Provider.OPENAI,
    "context_window": 128000,
    "max_output_tokens": 4096,
    "prompt_price_per_1k": "0",
    "completion_price_per_1k": "0",
    "prompt_weight": "1",
    "completion_weight": "1",
    "enabled": True,
}


async def _new(request: Request, staff: Staff) -> Response:
    return await _form_page(request, staff, values=NEW_MODEL, editing=None)


async def _create(request: Request, staff: Staff) -> Response:
    form = await form_of(request)
    services = services_of(request)
    try:
        name = forms.text(form, "name", "Name")
        draft = _draft(form, name)
        async with services.db.transaction() as session:
            await models_admin.create_model(
                session, actor_of(request, staff), draft, broker=services.broker
            )
    except ValidationFailed as exc:
        return await _form_page(request, staff, values=form, editing=None, error=exc.message)
    flash(request, "ok", f"Model {name} created.")
    return redirect("/admin/models")


async def _edit(request: Request, staff: Staff) -> Response:
    name = _path_name(request)
    async with services_of(request).db.read() as session:
        row = await catalog.get_model(session, name, include_disabled=True)
        fallback = None
        if row.fallback_model_id is not None:
            fallback = (await catalog.models_by_ids(session, [row.fallback_model_id])).get(
                row.fallback_model_id
            )
    values = {
        column: getattr(row, column)
        for column in (
            "name",
            "display_name",
            "provider",
            "upstream_model",
            "context_window",
            "max_output_tokens",
            "prompt_price_per_1k",
            "completion_price_per_1k",
            "prompt_weight",
            "completion_weight",
            *CACHE_FIELDS,
            "enabled",
            "is_default",
        )
    }
    values["fallback_model"] = fallback.name if fallback else ""
    return await _form_page(request, staff, values=values, editing=name)


async def _update(request: Request, staff: Staff) -> Response:
    name = _path_name(request)
    form = await form_of(request)
    services = services_of(request)
    try:
        patch = _patch(_draft(form, name))
        async with services.db.transaction() as session:
            await models_admin.update_model(
                session, actor_of(request, staff), name, patch, broker=services.broker
            )
    except ValidationFailed as exc:
        return await _form_page(
            request, staff, values={**form, "name": name}, editing=name, error=exc.message
        )
    flash(request, "ok", f"Model {name} saved.")
    return redirect("/admin/models")


async def _toggle(request: Request, staff: Staff) -> Response:
    name = _path_name(request)
    form = await form_of(request)
    enable = form.get("enabled") == "true"
    services = services_of(request)
    async with services.db.transaction() as session:
        await models_admin.update_model(
            session,
            actor_of(request, staff),
            name,
            models_admin.ModelPatch(enabled=enable),
            broker=services.broker,
        )
    flash(request, "ok", f"Model {name} {'enabled' if enable else 'disabled'}.")
    return redirect("/admin/models")


async def _reload(request: Request, staff: Staff) -> Response:
    services = services_of(request)
    reloaded = await models_admin.reload_models(
        services.db, services.broker, actor_of(request, staff)
    )
    flash(request, "ok", f"{reloaded.message}: {', '.join(reloaded.models) or 'none enabled'}.")
    return redirect("/admin/models")


routes = [
    Route("/models", staff_page(_list), methods=["GET"]),
    Route("/models/new", staff_page(_new), methods=["GET"]),
    Route("/models/new", staff_page(_create), methods=["POST"]),
    Route("/models/reload", staff_page(_reload), methods=["POST"]),
    Route("/models/{name:path}/edit", staff_page(_edit), methods=["GET"]),
    Route("/models/{name:path}/edit", staff_page(_update), methods=["POST"]),
    Route("/models/{name:path}/enabled", staff_page(_toggle), methods=["POST"]),
]
