"""Agents: list, create, edit, enable or disable, and delete (after a confirmation).

The same service calls as GraphQL's ``createAgent``, ``updateAgent`` and ``deleteAgent``,
each followed by the same notice to every instance.
"""

from __future__ import annotations

from collections.abc import Mapping

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
)
from llm_gateway.db.models import Agent
from llm_gateway.errors import Conflict, NotFound, ValidationFailed
from llm_gateway.services.catalog import agents as agents_admin
from llm_gateway.services.catalog import listing as catalog
from llm_gateway.services.catalog.params import GenerationParams
from llm_gateway.services.plumbing.patch import UNSET, Unset

MAX_AGENT_ID = 2**31 - 1  # agents.id is an INTEGER
LIST = "/admin/agents"


def _agent_id(request: Request) -> int:
    raw = str(request.path_params["agent_id"])
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 10 and 1 <= int(raw) <= MAX_AGENT_ID):
        raise NotFound("There is no such agent.")
    return int(raw)


async def _agent(request: Request, agent_id: int) -> tuple[Agent, str | None]:
    """The agent (enabled or not) and its model's name (None: the default model)."""
    async with services_of(request).db.read() as session:
        agent = (await catalog.agents_by_ids(session, [agent_id])).get(agent_id)
        if agent is None:
            raise NotFound(f"Agent {agent_id} does not exist.")
        model = None
        if agent.model_id is not None:
            found = await catalog.models_by_ids(session, [agent.model_id])
            model = found[agent.model_id].name if agent.model_id in found else None
    return agent, model


async def _list(request: Request, staff: Staff) -> Response:
    async with services_of(request).db.read() as session:
        agents = await catalog.list_agents(session, include_disabled=True)
        models = {
            row.id: row.name for row in await catalog.list_models(session, include_disabled=True)
        }
    return render(
        request,
        "agents.html",
        {"title": "Agents", "agents": agents, "models": models},
        staff=staff,
    )


async def _form_page(
    request: Request,
    staff: Staff,
    *,
    values: Mapping[str, object],
    editing: int | None,
    current_model: str | None = None,
    error: str | None = None,
) -> Response:
    async with services_of(request).db.read() as session:
        usable = [row.name for row in await catalog.list_models(session, include_disabled=False)]
    # An agent keeps a model that was disabled since; it stays choosable on its own form.
    retired = current_model if current_model is not None and current_model not in usable else None
    if retired is not None:
        usable.append(retired)
    return render(
        request,
        "agent_form.html",
        {
            "title": f"Edit agent {values.get('name') or editing}" if editing else "New agent",
            "editing": editing,
            "values": values,
            "models": usable,
            "retired_model": retired,
            "error": error,
        },
        staff=staff,
        status_code=400 if error else 200,
    )


NEW_AGENT = {"enabled": True, "model": ""}


def _draft(form: Mapping[str, str]) -> agents_admin.AgentDraft:
    return agents_admin.AgentDraft(
        name=forms.text(form, "name", "Name"),
        description=forms.free_text(form, "description", "Description"),
        system_prompt=forms.free_text(form, "system_prompt", "System prompt"),
        model=forms.optional_text(form, "model"),
        params=GenerationParams(
            temperature=forms.optional_float(form, "temperature", "Temperature"),
            top_p=forms.optional_float(form, "top_p", "Top P"),
            max_tokens=forms.optional_whole(form, "max_tokens", "Max tokens"),
        ),
        enabled=forms.checked(form, "enabled"),
    )


async def _new(request: Request, staff: Staff) -> Response:
    return await _form_page(request, staff, values=NEW_AGENT, editing=None)


async def _create(request: Request, staff: Staff) -> Response:
    form = await form_of(request)
    services = services_of(request)
    try:
        draft = _draft(form)
        async with services.db.transaction() as session:
            row = await agents_admin.create_agent(
                session,
                actor_of(request, staff),
                draft,
                max_content=services.limits.max_content_length,
                broker=services.broker,
            )
            name = row.name
    except (ValidationFailed, Conflict) as exc:
        return await _form_page(request, staff, values=form, editing=None, error=exc.message)
    flash(request, "ok", f"Agent {name} created.")
    return redirect(LIST)


async def _edit(request: Request, staff: Staff) -> Response:
    agent_id = _agent_id(request)
    agent, model = await _agent(request, agent_id)
    values = {
        "name": agent.name,
        "description": agent.description,
        "system_prompt": agent.system_prompt,
        "model": model or "",
        "temperature": agent.temperature,
        "top_p": agent.top_p,
        "max_tokens": agent.max_tokens,
        "enabled": agent.enabled,
    }
    return await _form_page(request, staff, values=values, editing=agent_id, current_model=model)


async def _update(request: Request, staff: Staff) -> Response:
    agent_id = _agent_id(request)
    _, current_model = await _agent(request, agent_id)
    form = await form_of(request)
    services = services_of(request)
    try:
        draft = _draft(form)
        # An unchanged model is left alone: a model disabled since still serves this agent.
        model: str | Unset | None = UNSET if draft.model == current_model else draft.model
        patch = agents_admin.AgentPatch(
            name=draft.name,
            description=draft.description,
            system_prompt=draft.system_prompt,
            model=model,
            temperature=draft.params.temperature,
            top_p=draft.params.top_p,
            max_tokens=draft.params.max_tokens,
            enabled=draft.enabled,
        )
        async with services.db.transaction() as session:
            row = await agents_admin.update_agent(
                session,
                actor_of(request, staff),
                agent_id,
                patch,
                max_content=services.limits.max_content_length,
                broker=services.broker,
            )
            name = row.name
    except (ValidationFailed, Conflict) as exc:
        return await _form_page(
            request,
            staff,
            values=form,
            editing=agent_id,
            current_model=current_model,
            error=exc.message,
        )
    flash(request, "ok", f"Agent {name} saved.")
    return redirect(LIST)


async def _toggle(request: Request, staff: Staff) -> Response:
    agent_id = _agent_id(request)
    form = await form_of(request)
    enable = form.get("enabled") == "true"
    services = services_of(request)
    async with services.db.transaction() as session:
        row = await agents_admin.update_agent(
            session,
            actor_of(request, staff),
            agent_id,
            agents_admin.AgentPatch(enabled=enable),
            max_content=services.limits.max_content_length,
            broker=services.broker,
        )
        name = row.name
    flash(request, "ok", f"Agent {name} {'enabled' if enable else 'disabled'}.")
    return redirect(LIST)


async def _delete(request: Request, staff: Staff) -> Response:
    agent_id = _agent_id(request)
    form = await form_of(request)
    if form.get("confirm") != "yes":
        agent, _ = await _agent(request, agent_id)
        return confirm(
            request,
            staff,
            title=f"Delete agent {agent.name}?",
            message="Dialogs started from it keep working without it. This cannot be undone.",
            action=f"{LIST}/{agent_id}/delete",
            button="Delete agent",
            cancel=LIST,
            fields=[("back", LIST)],
        )
    services = services_of(request)
    async with services.db.transaction() as session:
        row = await agents_admin.delete_agent(
            session, actor_of(request, staff), agent_id, broker=services.broker
        )
        name = row.name
    flash(request, "ok", f"Agent {name} deleted.")
    return redirect(LIST)


routes = [
    Route("/agents", staff_page(_list), methods=["GET"]),
    Route("/agents/new", staff_page(_new), methods=["GET"]),
    Route("/agents/new", staff_page(_create), methods=["POST"]),
    Route("/agents/{agent_id}/edit", staff_page(_edit), methods=["GET"]),
    Route("/agents/{agent_id}/edit", staff_page(_update), methods=["POST"]),
    Route("/agents/{agent_id}/enabled", staff_page(_toggle), methods=["POST"]),
    Route("/agents/{agent_id}/delete", staff_page(_delete), methods=["POST"]),
]
