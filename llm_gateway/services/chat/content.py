"""A message's content as the gateway takes it, sent or imported: checked, and titled.

Shared by ``sending`` and ``transfer.importing``, so an imported dialog is held to the
same rules and gets the same title as one typed in.
"""

from __future__ import annotations

from llm_gateway.errors import ValidationFailed

TITLE_LENGTH = 60


def make_title(content: str) -> str:
    """A dialog title from its first message: the first line, cut at a word boundary."""
    line = next((part.strip() for part in content.splitlines() if part.strip()), "")
    if len(line) <= TITLE_LENGTH:
        return line
    cut = line[:TITLE_LENGTH].rsplit(" ", 1)[0].rstrip(" ,.;:-")
    return (cut or line[:TITLE_LENGTH]) + "…"


def check_content(content: str, max_length: int) -> str:
    if not content.strip():
        raise ValidationFailed("content must not be empty.", field="content")
    if len(content) > max_length:
        raise ValidationFailed(
            f"content must be at most {max_length} characters.", field="content", maximum=max_length
        )
    return content


def check_idempotency_key(idempotency_key: str | None) -> None:
    if idempotency_key is not None and not 1 <= len(idempotency_key) <= 128:
        raise ValidationFailed(
            "idempotencyKey must be 1 to 128 characters.", field="idempotencyKey"
        )
