"""Reading one dialog of an import payload: every field checked, every problem noted.

A ``DialogReader`` turns one dialog of the payload into a ``DialogDraft`` to store, or
into the list of its problems (it notes them all instead of stopping at the first); what
it had to change (an unknown model, ignored keys) is noted too. Nothing here touches the
database; ``importing`` checks the payload as a whole and stores the drafts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from llm_gateway.db.models import Model
from llm_gateway.enums import MessageStatus, Role
from llm_gateway.errors import ValidationFailed
from llm_gateway.services.catalog.params import GenerationParams, validate_params
from llm_gateway.services.chat.content import check_content, make_title
from llm_gateway.services.chat.dialogs import MAX_TITLE_LENGTH
from llm_gateway.services.chat.transfer.message_links import (
    Link,
    active_leaf,
    flat_parents,
    tree_link,
)

MAX_MODEL_NAME_LENGTH = 100
IMPORT_ROLES = (Role.USER, Role.ASSISTANT, Role.SYSTEM)
UNFINISHED_STATUSES = (
    MessageStatus.FAILED,
    MessageStatus.CANCELLED,
    MessageStatus.INTERRUPTED,
    MessageStatus.STREAMING,
)
"""An answer in one of these states may have no text; such an empty one is skipped."""

PARAM_KEYS = ("temperature", "top_p", "max_tokens", "stop")
ONE_MICROSECOND = dt.timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class MessageDraft:
    role: str
    content: str
    model_name: str | None
    created_at: dt.datetime
    key: str
    """The message's ``id`` in a 3.0 payload; its position in an older one."""
    parent_key: str | None = None


@dataclass(frozen=True, slots=True)
class DialogDraft:
    title: str | None
    system_prompt: str | None
    model: Model
    params: GenerationParams
    created_at: dt.datetime
    updated_at: dt.datetime
    messages: list[MessageDraft]
    active_key: str | None = None
    """The active leaf's key (the newest message under the payload's active message)."""


@dataclass(slots=True)
class DialogReader:
    """Reads one dialog of the payload, noting every problem instead of stopping at one."""

    models: Mapping[str, Model]
    default: Model
    max_content: int
    now: dt.datetime
    tree: bool = False
    """A 3.0 payload: messages carry ``id`` and ``parent_id``, the dialog its active one."""
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

    def messages(self, raw: Any) -> tuple[list[MessageDraft], str | None]:
        """The messages to store, and the content of a leading system message."""
        if not isinstance(raw, list):
            self.problems.append("messages must be a list.")
            return [], None
        drafts: list[MessageDraft] = []
        system: str | None = None
        previous: dt.datetime | None = None
        seen: dict[str, str | None] = {}  # each key read so far -> its parent's key
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
            key, parent = (
                (None, None) if role == Role.SYSTEM else self.link(item, label, index, seen)
            )
            if not content.strip() and item.get("status") in UNFINISHED_STATUSES:
                self.changes.append(f"{label} skipped: an unfinished answer with no text.")
                if key is not None:  # its replies will hang off its parent instead
                    seen[key] = parent
                continue
            try:
                check_content(content, self.max_content)
            except ValidationFailed as exc:
                self.problems.append(f"{label}.{exc.message}")
                continue
            if role == Role.SYSTEM:
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
                if role == Role.ASSISTANT
                else None
            )
            if model_name is not None and len(model_name) > MAX_MODEL_NAME_LENGTH:
                self.problems.append(
                    f"{label}.model_name must be at most {MAX_MODEL_NAME_LENGTH} characters."
                )
            if key is not None:
                seen[key] = key  # a stored message: its replies hang off it
                drafts.append(MessageDraft(role, content, model_name, created_at, key, parent))
        if not self.tree:
            links = flat_parents([(draft.key, draft.role) for draft in drafts])
            drafts = [
                replace(draft, parent_key=link.parent)
                for draft, link in zip(drafts, links, strict=True)
            ]
        return drafts, system

    def link(
        self, item: Mapping[str, Any], label: str, index: int, keys: Mapping[str, str | None]
    ) -> tuple[str | None, str | None]:
        """A message's key and its parent's: ``id`` and ``parent_id`` in a 3.0 payload,
        its position otherwise."""
        if not self.tree:
            return f"#{index}", None
        key, parent, problem = tree_link(item.get("id"), item.get("parent_id"), keys)
        if problem is not None:
            self.problems.append(f"{label}.{problem}")
        return key, parent

    def dialog(self, raw: Any) -> DialogDraft | None:
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
        active = self.active(raw, messages)
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
            first_user = next((m.content for m in messages if m.role == Role.USER), None)
            title = make_title(first_user) or None if first_user is not None else None
        created_at = created_at or (messages[0].created_at if messages else self.now)
        updated_at = max(
            updated_at or (messages[-1].created_at if messages else created_at), created_at
        )
        return DialogDraft(
            title, system_prompt, model, params, created_at, updated_at, messages, active
        )

    def active(self, raw: Mapping[str, Any], messages: list[MessageDraft]) -> str | None:
        """The leaf to show: the newest message under the payload's active message (3.0),
        or the end of the flat history."""
        links = [Link(m.key, m.role, m.parent_key) for m in messages]
        chosen = raw.get("active_message_id") if self.tree else None
        if chosen is not None and not any(m.key == chosen for m in messages):
            self.changes.append("active_message_id names no imported message; the newest is used.")
        return active_leaf(links, chosen, tree=self.tree)
