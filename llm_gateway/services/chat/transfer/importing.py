"""Import of a user's own dialogs from JSON (format 1.0, 2.0 or 3.0; export is in export.py).

An import always creates new dialogs owned by the caller and never trusts a number
that could stand for money: every imported message is stored as finished, with no
token counts, no charge and no cost, and no balance, hold or ledger row is touched.
Timestamps are kept (future ones are clamped to now); where they disagree with the
order of the messages in the payload, the order wins. Each dialog is validated on its
own: a broken one is reported by its index and left out, the others are imported.
A 3.0 payload keeps the message tree (``id``, ``parent_id``, ``active_message_id``);
an older one becomes a single branch, as the migration to the tree did.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from llm_gateway.db.base import utcnow
from llm_gateway.db.models import Dialog, Message
from llm_gateway.enums import MessageStatus
from llm_gateway.errors import ValidationFailed
from llm_gateway.services.catalog import listing as catalog
from llm_gateway.services.chat.transfer.dialog_reader import DialogDraft, DialogReader

IMPORT_VERSIONS = ("1.0", "2.0", "3.0")
TREE_VERSIONS = ("3.0",)
"""The previous service wrote 1.0; its import payloads carried no version at all."""

MAX_IMPORT_DIALOGS = 200
MAX_IMPORT_MESSAGES = 5_000
MAX_IMPORT_BYTES = 16 * 1024 * 1024
MAX_PROBLEMS_PER_DIALOG = 10


@dataclass(frozen=True, slots=True)
class ImportReport:
    dialog_ids: list[uuid.UUID]
    messages_imported: int
    errors: list[str]
    """One line per problem, each naming the dialog by its index in ``dialogs``."""


def _dialogs_of(data: Any) -> tuple[str, list[Any]]:
    """The payload's version and dialogs, once its version, shape and size are acceptable."""
    if not isinstance(data, dict):
        raise ValidationFailed("data must be a JSON object with a dialogs list.", field="data")
    size = len(json.dumps(data, ensure_ascii=False).encode())
    if size > MAX_IMPORT_BYTES:
        raise ValidationFailed(
            f"data is {size} bytes; one import takes at most {MAX_IMPORT_BYTES}.",
            field="data",
            maximum=MAX_IMPORT_BYTES,
        )
    version = data.get("version", "1.0")
    if version not in IMPORT_VERSIONS:
        raise ValidationFailed(
            f"Unsupported export version {str(version)[:20]!r}; "
            f"expected one of {', '.join(IMPORT_VERSIONS)}.",
            field="data.version",
        )
    dialogs = data.get("dialogs")
    if not isinstance(dialogs, list):
        raise ValidationFailed("data.dialogs must be a list.", field="data.dialogs")
    if len(dialogs) > MAX_IMPORT_DIALOGS:
        raise ValidationFailed(
            f"data holds {len(dialogs)} dialogs; one import takes at most {MAX_IMPORT_DIALOGS}.",
            field="data.dialogs",
            maximum=MAX_IMPORT_DIALOGS,
        )
    messages = sum(
        len(d["messages"])
        for d in dialogs
        if isinstance(d, dict) and isinstance(d.get("messages"), list)
    )
    if messages > MAX_IMPORT_MESSAGES:
        raise ValidationFailed(
            f"data holds {messages} messages; one import takes at most {MAX_IMPORT_MESSAGES}.",
            field="data.dialogs",
            maximum=MAX_IMPORT_MESSAGES,
        )
    return str(version), dialogs


def _report_lines(index: int, problems: list[str], changes: list[str], imported: bool) -> list[str]:
    if not imported:
        shown = problems[:MAX_PROBLEMS_PER_DIALOG]
        lines = [f"dialogs[{index}] skipped: {problem}" for problem in shown]
        if len(problems) > len(shown):
            lines.append(f"dialogs[{index}] skipped: {len(problems) - len(shown)} more problems.")
        return lines
    return [f"dialogs[{index}] imported with a change: {change}" for change in changes]


def _store(session: AsyncSession, owner_id: int, draft: DialogDraft) -> Dialog:
    dialog = Dialog(
        id=uuid.uuid4(),
        user_id=owner_id,
        title=draft.title,
        model_id=draft.model.id,
        system_prompt=draft.system_prompt,
        temperature=draft.params.temperature,
        top_p=draft.params.top_p,
        max_tokens=draft.params.max_tokens,
        stop=draft.params.stop,
        created_at=draft.created_at,
        updated_at=draft.updated_at,
    )
    session.add(dialog)
    ids = {item.key: uuid.uuid4() for item in draft.messages}
    for item in draft.messages:
        message = Message(
            id=ids[item.key],
            dialog_id=dialog.id,
            user_id=owner_id,
            role=item.role,
            content=item.content,
            status=MessageStatus.COMPLETE,
            model_name=item.model_name,
            # The branch the reader worked out: the imported history is the context of
            # the next message sent on it.
            parent_id=ids[item.parent_key] if item.parent_key is not None else None,
            created_at=item.created_at,
            completed_at=item.created_at,
        )
        session.add(message)
    dialog.active_leaf_id = ids[draft.active_key] if draft.active_key is not None else None
    return dialog


async def import_dialogs(
    session: AsyncSession, owner_id: int, data: Any, *, max_content: int
) -> ImportReport:
    """Store the payload's valid dialogs as new dialogs of ``owner_id``; report the rest.

    A payload that is not an export, or too large, is refused whole (VALIDATION_FAILED).
    Token counts, charges and costs in the payload are ignored: nothing imported was
    generated or paid for here.
    """
    version, raw_dialogs = _dialogs_of(data)
    models = {m.name: m for m in await catalog.list_models(session, include_disabled=False)}
    default = await catalog.default_model(session)
    now = utcnow()
    dialog_ids: list[uuid.UUID] = []
    messages = 0
    errors: list[str] = []
    for index, raw in enumerate(raw_dialogs):
        reader = DialogReader(models, default, max_content, now, tree=version in TREE_VERSIONS)
        draft = reader.dialog(raw)
        errors.extend(_report_lines(index, reader.problems, reader.changes, draft is not None))
        if draft is not None:
            dialog_ids.append(_store(session, owner_id, draft).id)
            messages += len(draft.messages)
    await session.flush()
    return ImportReport(dialog_ids, messages, errors)
