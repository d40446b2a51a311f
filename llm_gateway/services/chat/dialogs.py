"""Dialogs and their history, always scoped to the owner.

Another user's dialog is reported exactly like a missing one (NOT_FOUND), so ids
reveal nothing. Deleted dialogs are soft-deleted and vanish from every read.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from llm_gateway.db.base import utcnow
from llm_gateway.db.models import Dialog, Message, Model
from llm_gateway.errors import NotFound, ValidationFailed
from llm_gateway.services.catalog import listing as catalog
from llm_gateway.services.catalog.params import GenerationParams, validate_params
from llm_gateway.services.chat import branches
from llm_gateway.services.chat.search.engines import dialogs_mentioning
from llm_gateway.services.plumbing.pagination import (
    Page,
    check_page_size,
    decode_time_cursor,
    encode_cursor,
    make_page,
)
from llm_gateway.services.plumbing.patch import UNSET, Unset

MAX_TITLE_LENGTH = 255
MAX_SEARCH_LENGTH = 200


@dataclass(frozen=True, slots=True)
class DialogDraft:
    title: str | None = None
    model: str | None = None
    agent_id: int | None = None
    system_prompt: str | None = None
    params: GenerationParams = field(default_factory=GenerationParams)


@dataclass(frozen=True, slots=True)
class DialogPatch:
    title: str | Unset | None = UNSET
    model: str | Unset = UNSET
    agent_id: int | Unset | None = UNSET
    system_prompt: str | Unset | None = UNSET
    temperature: float | Unset | None = UNSET
    top_p: float | Unset | None = UNSET
    max_tokens: int | Unset | None = UNSET
    stop: list[str] | Unset | None = UNSET


def _check_text(title: str | None, system_prompt: str | None, max_content: int) -> None:
    if title is not None and len(title) > MAX_TITLE_LENGTH:
        raise ValidationFailed(
            f"title must be at most {MAX_TITLE_LENGTH} characters.", field="title"
        )
    if system_prompt is not None and len(system_prompt) > max_content:
        raise ValidationFailed(
            f"systemPrompt must be at most {max_content} characters.", field="systemPrompt"
        )


def _params_of(dialog: Dialog) -> GenerationParams:
    return GenerationParams(
        temperature=dialog.temperature,
        top_p=dialog.top_p,
        max_tokens=dialog.max_tokens,
        stop=dialog.stop,
    )


def _apply_params(dialog: Dialog, params: GenerationParams) -> None:
    dialog.temperature = params.temperature
    dialog.top_p = params.top_p
    dialog.max_tokens = params.max_tokens
    dialog.stop = params.stop


async def create_dialog(
    session: AsyncSession, owner_id: int, draft: DialogDraft, *, max_content: int
) -> Dialog:
    _check_text(draft.title, draft.system_prompt, max_content)
    agent = await catalog.usable_agent(session, draft.agent_id) if draft.agent_id else None
    model: Model
    if draft.model is not None:
        model = await catalog.usable_model(session, draft.model)
    elif agent is not None and agent.model_id is not None:
        agent_model = (await catalog.models_by_ids(session, [agent.model_id])).get(agent.model_id)
        model = (
            agent_model
            if agent_model and agent_model.enabled
            else (await catalog.default_model(session))
        )
    else:
        model = await catalog.default_model(session)
    params = validate_params(draft.params, model)
    now = utcnow()
    dialog = Dialog(
        created_at=now,
        updated_at=now,
        user_id=owner_id,
        title=draft.title.strip() or None if draft.title is not None else None,
        model_id=model.id,
        agent_id=agent.id if agent else None,
        system_prompt=draft.system_prompt,
    )
    _apply_params(dialog, params)
    session.add(dialog)
    await session.flush()
    return dialog


async def get_dialog(session: AsyncSession, owner_id: int, dialog_id: uuid.UUID) -> Dialog:
    """The caller's own live dialog, or NOT_FOUND (also for someone else's)."""
    dialog = await session.scalar(
        select(Dialog).where(
            Dialog.id == dialog_id, Dialog.user_id == owner_id, Dialog.deleted_at.is_(None)
        )
    )
    if dialog is None:
        raise NotFound("Dialog not found.", id=str(dialog_id))
    return dialog


async def update_dialog(
    session: AsyncSession,
    owner_id: int,
    dialog_id: uuid.UUID,
    patch: DialogPatch,
    *,
    max_content: int,
) -> Dialog:
    dialog = await get_dialog(session, owner_id, dialog_id)
    title = dialog.title if isinstance(patch.title, Unset) else patch.title
    system_prompt = (
        dialog.system_prompt if isinstance(patch.system_prompt, Unset) else patch.system_prompt
    )
    _check_text(title, system_prompt, max_content)
    if isinstance(patch.model, Unset):
        model = (await catalog.models_by_ids(session, [dialog.model_id]))[dialog.model_id]
    else:
        model = await catalog.usable_model(session, patch.model)
    if not isinstance(patch.agent_id, Unset):
        dialog.agent_id = (
            (await catalog.usable_agent(session, patch.agent_id)).id if patch.agent_id else None
        )
    params = _params_of(dialog)
    for name in ("temperature", "top_p", "max_tokens", "stop"):
        value = getattr(patch, name)
        if not isinstance(value, Unset):
            params = replace(params, **{name: value})
    # Re-checked in full: a new model may not take the params the old one did.
    _apply_params(dialog, validate_params(params, model))
    dialog.model_id = model.id
    dialog.title = title.strip() or None if title is not None else None
    dialog.system_prompt = system_prompt
    dialog.updated_at = utcnow()
    await session.flush()
    return dialog


async def delete_dialog(session: AsyncSession, owner_id: int, dialog_id: uuid.UUID) -> Dialog:
    dialog = await get_dialog(session, owner_id, dialog_id)
    dialog.deleted_at = utcnow()
    await session.flush()
    return dialog


def _dialog_cursor(dialog: Dialog) -> str:
    return encode_cursor(dialog.updated_at.isoformat(), str(dialog.id))


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def list_dialogs(
    session: AsyncSession,
    owner_id: int,
    *,
    first: int | None,
    after: str | None,
    search: str | None,
    max_page_size: int,
) -> Page[Dialog]:
    """The owner's live dialogs, most recent activity first; ``search`` matches the title
    (a substring, any case) or the content of a message (words, in any form)."""
    size = check_page_size(first, max_page_size)
    query: Select[Dialog] = select(Dialog).where(
        Dialog.user_id == owner_id, Dialog.deleted_at.is_(None)
    )
    if search is not None and search.strip():
        if len(search) > MAX_SEARCH_LENGTH:
            raise ValidationFailed(
                f"search must be at most {MAX_SEARCH_LENGTH} characters.", field="search"
            )
        pattern = f"%{_escape_like(search.strip().lower())}%"
        found = func.lower(Dialog.title).like(pattern, escape="\\")
        # Or a message of the dialog matches it as searchMessages would (word forms).
        mentioning = await dialogs_mentioning(session, owner_id, search)
        query = query.where(found if mentioning is None else or_(found, Dialog.id.in_(mentioning)))
    if after is not None:
        at, last_id = _decode_time_id(after)
        query = query.where(
            or_(
                Dialog.updated_at < at,
                and_(Dialog.updated_at == at, Dialog.id < last_id),
            )
        )
    query = query.order_by(Dialog.updated_at.desc(), Dialog.id.desc()).limit(size + 1)
    rows = (await session.scalars(query)).all()
    return make_page(rows, size, _dialog_cursor, after=after is not None)


def _message_cursor(message: Message) -> str:
    return encode_cursor(message.created_at.isoformat(), str(message.id))


async def list_messages(
    session: AsyncSession,
    owner_id: int,
    dialog_id: uuid.UUID,
    *,
    first: int | None,
    after: str | None,
    max_page_size: int,
) -> Page[Message]:
    """The dialog's active branch, root first (README: branches).

    Other branches are reached through ``Message.siblingIds`` and ``switchBranch``.
    """
    size = check_page_size(first, max_page_size)
    dialog = await get_dialog(session, owner_id, dialog_id)
    leaf = await branches.current_leaf(session, dialog)
    if leaf is None:
        return make_page([], size, _message_cursor, after=after is not None)
    cursor = _decode_time_id(after) if after is not None else None
    rows = await branches.path_to(session, dialog.id, leaf, after=cursor, limit=size + 1)
    return make_page(rows, size, _message_cursor, after=after is not None)


def _decode_time_id(cursor: str) -> tuple[dt.datetime, uuid.UUID]:
    moment, raw_id = decode_time_cursor(cursor)
    try:
        return moment, uuid.UUID(raw_id)
    except ValueError:
        raise ValidationFailed("Invalid cursor.", field="after") from None


async def last_messages(
    session: AsyncSession, dialog_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Message]:
    """The newest message of each dialog, in one statement."""
    newest = (
        select(
            Message.id,
            func.row_number()
            .over(
                partition_by=Message.dialog_id,
                order_by=(Message.created_at.desc(), Message.id.desc()),
            )
            .label("rank"),
        )
        .where(Message.dialog_id.in_(dialog_ids))
        .subquery()
    )
    rows = await session.scalars(
        select(Message).join(newest, newest.c.id == Message.id).where(newest.c.rank == 1)
    )
    return {row.dialog_id: row for row in rows}
