"""Building what the model sees: system prompt, the newest history that fits, the message."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from llm_gateway.enums import MessageStatus, Role
from llm_gateway.errors import ValidationFailed
from llm_gateway.providers.base import ChatMessage
from llm_gateway.providers.tokens import count_messages
from llm_gateway.services.chat import branches
from llm_gateway.services.chat.branches import Turn

# Assistant answers worth showing the model again: what the user saw, even if cut short.
CONTEXT_STATUSES = (MessageStatus.COMPLETE, MessageStatus.CANCELLED, MessageStatus.INTERRUPTED)


@dataclass(frozen=True, slots=True)
class FittedContext:
    messages: list[ChatMessage]
    prompt_tokens: int
    history_used: int
    history_dropped: int


def usable(row: Turn) -> bool:
    """Whether a message of the branch goes into the context: every question, and the
    answers the user saw (even if cut short); failed or empty answers do not."""
    if row.role == Role.USER:
        return True
    return row.status in CONTEXT_STATUSES and bool(row.content)


async def history_before(
    session: AsyncSession, dialog_id: uuid.UUID, tip: uuid.UUID | None
) -> list[Turn]:
    """The branch a new question follows: ``tip`` and its ancestors that are usable.

    ``tip`` is the new question's parent (None: the question starts the dialog). Only
    that branch is sent; sibling answers and edited-away questions are not.
    """
    if tip is None:
        return []
    return [turn for turn in await branches.turns_to(session, dialog_id, tip) if usable(turn)]


def fit_context(
    system_prompt: str | None,
    history: Sequence[Turn],
    new_message: str,
    *,
    provider: str,
    budget: int,
) -> FittedContext:
    """System prompt, then as much of the newest history as fits ``budget``, then the message.

    ``budget`` is the model's context window minus the output cap. The newest history is
    kept first; the new message must always fit, or the call is refused.
    """
    # ChatMessage.role is the adapters' Literal (the same words as Role): written as such.
    head = [ChatMessage("system", system_prompt)] if system_prompt else []
    tail = [ChatMessage("user", new_message)]
    base = count_messages(head + tail, provider)
    if base > budget:
        raise ValidationFailed(
            f"The message and system prompt need {base} tokens; this model leaves room for "
            f"{budget} with the answer's cap. Shorten the message or lower maxTokens.",
            field="content",
            needed=base,
            budget=budget,
        )
    kept: list[ChatMessage] = []
    used = base
    for row in reversed(history):
        item = ChatMessage("user" if row.role == Role.USER else "assistant", row.content)
        cost = count_messages([item], provider) - count_messages([], provider)
        if used + cost > budget:
            break
        kept.append(item)
        used += cost
    kept.reverse()
    # A conversation must not start with an orphaned answer.
    while kept and kept[0].role == "assistant":
        used -= count_messages([kept[0]], provider) - count_messages([], provider)
        kept.pop(0)
    messages = head + kept + tail
    return FittedContext(
        messages=messages,
        prompt_tokens=count_messages(messages, provider),
        history_used=len(kept),
        history_dropped=len(history) - len(kept),
    )
