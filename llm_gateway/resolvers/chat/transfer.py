"""Export and import of the caller's dialogs as JSON."""

from __future__ import annotations

import uuid

from strawberry.scalars import JSON

from llm_gateway.schema.chat.transfer import ImportDialogsResult
from llm_gateway.schema.context import Info
from llm_gateway.schema.inputs import ImportDialogsInput
from llm_gateway.services.chat.transfer import export
from llm_gateway.services.chat.transfer import importing as transfer


async def export_dialogs(info: Info, ids: list[uuid.UUID] | None = None) -> JSON:
    """The caller's live dialogs (all, or these) with their messages, oldest first."""
    ctx = info.context
    async with ctx.services.db.read() as session:
        payload = await export.export_dialogs(session, ctx.principal.user_id, ids)
    return JSON(payload)


async def import_dialogs(info: Info, input: ImportDialogsInput) -> ImportDialogsResult:
    ctx = info.context
    async with ctx.services.db.transaction() as session:
        report = await transfer.import_dialogs(
            session,
            ctx.principal.user_id,
            input.data,
            max_content=ctx.services.limits.max_content_length,
        )
    return ImportDialogsResult.from_report(report)
