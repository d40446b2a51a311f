"""Keyset pagination: opaque cursors over a strict ordering, no offsets."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from llm_gateway.errors import ValidationFailed

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 20


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of rows, each with the cursor that resumes right after it."""

    items: list[tuple[str, T]]
    has_next_page: bool
    has_previous_page: bool


MAX_CURSOR_LENGTH = 512
"""Ours are far shorter; a longer one is not ours (and is never parsed)."""


def encode_cursor(*parts: str) -> str:
    raw = json.dumps(list(parts), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, arity: int, *, field: str = "after") -> list[str]:
    """The parts of a cursor this service issued; anything else is a VALIDATION_FAILED."""
    if len(cursor) > MAX_CURSOR_LENGTH:
        raise ValidationFailed("Invalid cursor.", field=field)
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        parts = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, binascii.Error, UnicodeDecodeError, RecursionError):
        raise ValidationFailed("Invalid cursor.", field=field) from None
    if (
        not isinstance(parts, list)
        or len(parts) != arity
        or not all(isinstance(p, str) for p in parts)
    ):
        raise ValidationFailed("Invalid cursor.", field=field)
    return parts


def decode_time_cursor(cursor: str, *, field: str = "after") -> tuple[dt.datetime, str]:
    """A (time, id) cursor: an aware time that converts to UTC, and the raw id."""
    at, raw_id = decode_cursor(cursor, 2, field=field)
    try:
        moment = dt.datetime.fromisoformat(at)
        if moment.tzinfo is None:
            raise ValueError("naive")
        moment = moment.astimezone(dt.UTC)
    except (ValueError, OverflowError):
        raise ValidationFailed("Invalid cursor.", field=field) from None
    return moment, raw_id


def cursor_int(raw: str, *, field: str = "after") -> int:
    """A row id from a cursor (a BIGINT: at most 18 digits here), else VALIDATION_FAILED."""
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 18):
        raise ValidationFailed("Invalid cursor.", field=field)
    return int(raw)


def check_page_size(first: int | None, maximum: int, *, field: str = "first") -> int:
    if first is None:
        return min(DEFAULT_PAGE_SIZE, maximum)
    if first < 1 or first > maximum:
        raise ValidationFailed(
            f"'{field}' must be between 1 and {maximum}.", field=field, maximum=maximum
        )
    return first


def make_page(
    rows: Sequence[T], size: int, cursor_of: Callable[[T], str], *, after: bool
) -> Page[T]:
    """Build a page from ``size + 1`` fetched rows (the extra one only tells there is more)."""
    return Page(
        items=[(cursor_of(row), row) for row in rows[:size]],
        has_next_page=len(rows) > size,
        has_previous_page=after,
    )
