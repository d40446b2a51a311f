"""Import of a user's own dialogs from JSON (format 1.0 or 2.0; export is in export.py).

An import always creates new dialogs owned by the caller and never trusts a number
that could stand for money: every imported message is stored as finished, with no
token counts, no charge and no cost, and no balance, hold or ledger row is touched.
Timestamps are kept (future ones are clamped to now); where they disagree with the
order of the messages in the payload, the order wins. Each dialog is validated on its
own: a broken one is reported by its index and left out, the others are imported.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from llm_gateway.db.base import utcnow
from llm_gateway.db.models import Dialog, Message, Model
from llm_gateway.errors import ValidationFailed
from llm_gateway.services.catalog import listing as catalog
from llm_gateway.services.catalog.params import GenerationParams, validate_params
from llm_gateway.services.chat.dialogs import MAX_TITLE_LENGTH
from llm_gateway.services.chat.sending import check_content, make_title

IMPORT_VERSIONS = ("1.0", "2.0")
"""The previous service wrote 1.0; its import payloads carried no version at all."""

MAX_IMPORT_DIALOGS = 200
MAX_IMPORT_MESSAGES = 5_000
MAX_IMPORT_BYTES = 16 * 1024 * 1024
MAX_MODEL_NAME_LENGTH = 100
MAX_PROBLEMS_PER_DIALOG = 10

IMPORT_ROLES = ("user", "assistant", "system")
UNFINISHED_STATUSES = ("failed", "cancelled", "interrupted", "streaming")
"""An answer in one of these states may have no text; such an empty one is skipped."""

PARAM_KEYS = ("temperature", "top_p", "max_tokens", "stop")
ONE_MICROSECOND = dt.timedelta(microseconds=1)


# -- import ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ImportReport:
    dialog_ids: list[uuid.UUID]
    messages_imported: int
    errors: list[str]
    """One line per problem, each naming the dialog by its index in ``dialogs``."""


@dataclass(frozen=True, slots=True)
class _MessageDraft:
    role: str
    content: str
    model_name: str | None
    created_at: dt.datetime


@dataclass(frozen=True, slots=True)
class _DialogDraft:
    title: str | None
    system_prompt: str | None
    model: Model
    params: GenerationParams
    created_at: dt.datetime
    updated_at: dt.datetime
    messages: list[_MessageDraft]


@dataclass(slots=True)
class _Reader:
    """Reads one dialog of the payload, noting every problem instead of stopping at one."""

    models: Mapping[str, Model]
    default: Model
    max_content: int
    now: dt.datetime
    problems: list[str] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)

    def text(self, raw: Mapping[str, Any], key: str, label: str | None = None) -> str | None:
        value = raw.get(key)
        if value is None or isinstance(value, str):
            return value
        self.problems.append(f"{label or key} must be a string.")
        return None

    def number(self, raw: Mapping[str, Any], key: str, *, integer: bool) -> Any:
        value = raw.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.problems.append(f"agent_config.{key} must be a number.")
            return None
        if integer:
            if isinstance(value, float) and not value.is_integer():
                self.problems.append(f"agent_config.{key} must be a whole number.")
                return None
            return int(value)
        return float(value)

    def moment(self, value: Any, label: str) -> dt.datetime | None:
        """An ISO 8601 date-time; without an offset it is UTC; later than now is now."""
        if value is None:
            return None
        if not isinstance(value, str):
            self.problems.append(f"{label} must be an ISO 8601 date-time string.")
            return None
        try:
            moment = dt.datetime.fromisoformat(value)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=dt.UTC)
            moment = moment.astimezone(dt.UTC)
        except (ValueError, OverflowError):
            self.problems.append(f"{label} is not an ISO 8601 date-time: {value[:40]!r}.")
            return None
        return min(moment, self.now)

    def model(self, raw: Mapping[str, Any]) -> Model:
        name = self.text(raw, "model_name")
        if name is None:
            return self.default
        model = self.models.get(name)
        if model is None:
            self.changes.append(
                f"model {name[:MAX_MODEL_NAME_LENGTH]!r} is not available; "
                f"the default model {self.default.name!r} is used."
            )
            return self.default
        return model

    def params(self, raw: Mapping[str, Any], model: Model) -> GenerationParams:
        config = raw.get("agent_config")
        if config is None:
            return GenerationParams()
        if not isinstance(config, dict):
            self.problems.append("agent_config must be an object.")
            return GenerationParams()
        ignored = sorted(str(key) for key in config if key not in PARAM_KEYS)
        if ignored:
            self.changes.append(f"agent_config keys ignored: {', '.join(ignored)[:200]}.")
        stop = config.get("stop")
        if stop is not None and (
            not isinstance(stop, list) or not all(isinstance(s, str) for s in stop)
        ):
            self.problems.append("agent_config.stop must be a list of strings.")
            stop = None
        before = len(self.problems)
        params = GenerationParams(
            temperature=self.number(config, "temperature", integer=False),
            top_p=self.number(config, "top_p", integer=False),
            max_tokens=self.number(config, "max_tokens", integer=True),
            stop=stop,
        )
        if len(self.problems) > before:
            return GenerationParams()
        try:
            return validate_params(params, model)
        except ValidationFailed as exc:
            self.problems.append(f"agent_config: {exc.message}")
            return GenerationParams()

    def messages(self, raw: Any) -> tuple[list[_MessageDraft], str | None]:
        """The messages to store, and the content of a leading system message."""
        if not isinstance(raw, list):
            self.problems.append("messages must be a list.")
            return [], None
        drafts: list[_MessageDraft] = []
        system: str | None = None
        previous: dt.datetime | None = None
        for index, item in enumerate(raw):
            label = f"messages[{index}]"
            if not isinstance(item, dict):
                self.problems.append(f"{label} must be an object.")
                continue
            role, content = item.get("role"), item.get("content")
            if role not in IMPORT_ROLES:
                self.problems.append(
                    f"{label}.role must be user, assistant or system, not {str(role)[:40]!r}."
                )
                continue
            if not isinstance(content, str):
                self.problems.append(f"{label}.content must be a string.")
                continue
            if not content.strip() and item.get("status") in UNFINISHED_STATUSES:
                self.changes.append(f"{label} skipped: an unfinished answer with no text.")
                continue
            try:
                check_content(content, self.max_content)
            except ValidationFailed as exc:
                self.problems.append(f"{label}.{exc.message}")
                continue
            if role == "system":
                if index == 0:
                    system = content
                else:
                    self.problems.append(
                        f"{label}: only the first message may be a system message."
                    )
                continue
            created_at = self.moment(item.get("created_at"), f"{label}.created_at")
            if created_at is None:
                if item.get("created_at") is None:
                    self.problems.append(f"{label}.created_at is required.")
                continue
            if previous is not None and created_at <= previous:
                created_at = previous + ONE_MICROSECOND  # the payload's order wins
            previous = created_at
            model_name = (
                self.text(item, "model_name", f"{label}.model_name")
                if role == "assistant"
                else None
            )
            if model_name is not None and len(model_name) > MAX_MODEL_NAME_LENGTH:
                self.problems.append(
                    f"{label}.model_name must be at most {MAX_MODEL_NAME_LENGTH} characters."
                )
            drafts.append(_MessageDraft(role, content, model_name, created_at))
        return drafts, system

    def dialog(self, raw: Any) -> _DialogDraft | None:
        if not isinstance(raw, dict):
            self.problems.append("must be an object.")
            return None
        title = self.text(raw, "title")
        title = title.strip() or None if title is not None else None
        if title is not None and len(title) > MAX_TITLE_LENGTH:
            self.problems.append(f"title must be at most {MAX_TITLE_LENGTH} characters.")
        system_prompt = self.text(raw, "system_prompt") or None
        if system_prompt is not None and len(system_prompt) > self.max_content:
            self.problems.append(f"system_prompt must be at most {self.max_content} characters.")
        model = self.model(raw)
        params = self.params(raw, model)
        messages, leading_system = self.messages(raw.get("messages"))
        if leading_system is not None:
            if system_prompt is None:
                system_prompt = leading_system
            elif leading_system != system_prompt:
                self.problems.append("system_prompt and the leading system message differ.")
        created_at = self.moment(raw.get("created_at"), "created_at")
        updated_at = self.moment(raw.get("updated_at"), "updated_at")
        if self.problems:
            return None
        if title is None:
            first_user = next((m.content for m in messages if m.role == "user"), None)
            title = make_title(first_user) or None if first_user is not None else None
        created_at = created_at or (messages[0].created_at if messages else self.now)
        updated_at = max(
            updated_at or (messages[-1].created_at if messages else created_at), created_at
        )
        return _DialogDraft(title, system_prompt, model, params, created_at, updated_at, messages)


def _dialogs_of(data: Any) -> list[Any]:
    """The payload's dialogs, once its version, shape and size are acceptable."""
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
    return dialogs


def _report_lines(index: int, problems: list[str], changes: list[str], imported: bool) -> list[str]:
    if not imported:
        shown = problems[:MAX_PROBLEMS_PER_DIALOG]
        lines = [f"dialogs[{index}] skipped: {problem}" for problem in shown]
        if len(problems) > len(shown):
            lines.append(f"dialogs[{index}] skipped: {len(problems) - len(shown)} more problems.")
        return lines
    return [f"dialogs[{index}] imported with a change: {change}" for change in changes]


def _store(session: AsyncSession, owner_id: int, draft: _DialogDraft) -> Dialog:
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
    question: uuid.UUID | None = None
    for item in draft.messages:
        message = Message(
            id=uuid.uuid4(),
            dialog_id=dialog.id,
            user_id=owner_id,
            role=item.role,
            content=item.content,
            status="complete",
            model_name=item.model_name,
            # An answer hangs off the question before it, as in the chat flow, so the
            # imported history is part of the context of the next message.
            parent_id=question if item.role == "assistant" else None,
            created_at=item.created_at,
            completed_at=item.created_at,
        )
        session.add(message)
        if item.role == "user":
            question = message.id
    return dialog


async def import_dialogs(
    session: AsyncSession, owner_id: int, data: Any, *, max_content: int
) -> ImportReport:
    """Store the payload's valid dialogs as new dialogs of ``owner_id``; report the rest.

    A payload that is not an export, or too large, is refused whole (VALIDATION_FAILED).
    Token counts, charges and costs in the payload are ignored: nothing imported was
    generated or paid for here.
    """
    raw_dialogs = _dialogs_of(data)
    models = {m.name: m for m in await catalog.list_models(session, include_disabled=False)}
    default = await catalog.default_model(session)
    now = utcnow()
    dialog_ids: list[uuid.UUID] = []
    messages = 0
    errors: list[str] = []
    for index, raw in enumerate(raw_dialogs):
        reader = _Reader(models, default, max_content, now)
        draft = reader.dialog(raw)
        errors.extend(_report_lines(index, reader.problems, reader.changes, draft is not None))
        if draft is not None:
            dialog_ids.append(_store(session, owner_id, draft).id)
            messages += len(draft.messages)
    await session.flush()
    return ImportReport(dialog_ids, messages, errors)
