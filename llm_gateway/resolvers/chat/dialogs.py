"""Dialogs and their messages: reads and the dialog mutations."""

from __future__ import annotations

import uuid

from llm_gateway.schema.chat.types import DeletedDialog, DialogType, MessageType
from llm_gateway.schema.context import Info
from llm_gateway.schema.inputs import (
    CreateDialogInput,
    DeleteDialogInput,
    SwitchBranchInput,
    UpdateDialogInput,
    patch_value,
)
from llm_gateway.schema.pagination import Connection
from llm_gateway.services.catalog.params import GenerationParams
from llm_gateway.services.chat import branches, dialogs


async def dialog_list(
    info: Info, first: int | None = None, after: str | None = None, search: str | None = None
) -> Connection[DialogType]:
    """The caller's dialogs, most recent activity first; ``search`` matches titles."""
    ctx = info.context
    async with ctx.services.db.read() as session:
        page = await dialogs.list_dialogs(
            session,
            ctx.principal.user_id,
            first=first,
            after=after,
            search=search,
            max_page_size=ctx.services.settings.graphql_max_page_size,
        )
    return Connection.of(page, DialogType.from_row)


async def dialog(info: Info, id: uuid.UUID) -> DialogType:
    async with info.context.services.db.read() as session:
        row = await dialogs.get_dialog(session, info.context.principal.user_id, id)
    return DialogType.from_row(row)


async def message_list(
    info: Info, dialog_id: uuid.UUID, first: int | None = None, after: str | None = None
) -> Connection[MessageType]:
    """The dialog's active branch, oldest first."""
    ctx = info.context
    async with ctx.services.db.read() as session:
        page = await dialogs.list_messages(
            session,
            ctx.principal.user_id,
            dialog_id,
            first=first,
            after=after,
            max_page_size=ctx.services.settings.graphql_max_page_size,
        )
    return Connection.of(page, MessageType.from_row)


async def create_dialog(info: Info, input: CreateDialogInput) -> DialogType:
    ctx = info.context
    draft = dialogs.DialogDraft(
        title=input.title,
        model=input.model,
        agent_id=input.agent_id,
        system_prompt=input.system_prompt,
        params=GenerationParams(
            temperature=input.temperature,
            top_p=input.top_p,
            max_tokens=input.max_tokens,
            stop=input.stop,
        ),
    )
    async with ctx.services.db.transaction() as session:
        row = await dialogs.create_dialog(
            session,
            ctx.principal.user_id,
            draft,
            max_content=ctx.services.limits.max_content_length,
        )
    return DialogType.from_row(row)


async def update_dialog(info: Info, input: UpdateDialogInput) -> DialogType:
    ctx = info.context
    patch = dialogs.DialogPatch(
        title=patch_value(input.title),
        model=patch_value(input.model),
        agent_id=patch_value(input.agent_id),
        system_prompt=patch_value(input.system_prompt),
        temperature=patch_value(input.temperature),
        top_p=patch_value(input.top_p),
        max_tokens=patch_value(input.max_tokens),
        stop=patch_value(input.stop),
    )
    async with ctx.services.db.transaction() as session:
        row = await dialogs.update_dialog(
            session,
            ctx.principal.user_id,
            input.id,
            patch,
            max_content=ctx.services.limits.max_content_length,
        )
    return DialogType.from_row(row)


async def delete_dialog(info: Info, input: DeleteDialogInput) -> DeletedDialog:
    ctx = info.context
    async with ctx.services.db.transaction() as session:
        row = await dialogs.delete_dialog(session, ctx.principal.user_id, input.id)
    return DeletedDialog(id=row.id)


async def switch_branch(info: Info, input: SwitchBranchInput) -> DialogType:
    """Show the branch through ``messageId``: its newest message becomes the active leaf."""
    ctx = info.context
    async with ctx.services.db.transaction() as session:
        row = await dialogs.get_dialog(session, ctx.principal.user_id, input.dialog_id)
        row = await branches.switch_branch(session, row, input.message_id)
    return DialogType.from_row(row)
