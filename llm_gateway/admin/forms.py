"""Reading posted form fields into typed values; a bad value raises ValidationFailed
naming the field, which the page shows next to the form (values kept).

Text is refused when it holds a NUL character: PostgreSQL stores none in a text column,
and refusing it here keeps both databases answering alike, with a message, not a 500.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation

from llm_gateway.errors import ValidationFailed
from llm_gateway.services.staff import reports

NUL = "\x00"


def _label(name: str) -> str:
    return name.replace("_", " ").capitalize()


def no_nul(fields: Mapping[str, str]) -> None:
    """Refuse the first field (of a form, or a page's filters) whose text holds a NUL."""
    for name in fields:
        free_text(fields, name, _label(name))


def text(form: Mapping[str, str], name: str, label: str) -> str:
    value = free_text(form, name, label)
    if not value:
        raise ValidationFailed(f"{label} is required.", field=name)
    return value


def free_text(form: Mapping[str, str], name: str, label: str) -> str:
    """The field as typed, empty when absent."""
    value = form.get(name, "")
    if NUL in value:
        raise ValidationFailed(f"{label} must not contain a NUL character.", field=name)
    return value


def optional_text(form: Mapping[str, str], name: str, label: str | None = None) -> str | None:
    return free_text(form, name, label or _label(name)) or None


def whole(form: Mapping[str, str], name: str, label: str) -> int:
    raw = form.get(name, "").replace(",", "").replace("_", "").replace(" ", "")
    try:
        return int(raw)
    except ValueError:
        raise ValidationFailed(f"{label} must be a whole number.", field=name) from None


def optional_whole(form: Mapping[str, str], name: str, label: str) -> int | None:
    return whole(form, name, label) if form.get(name) else None


def decimal(form: Mapping[str, str], name: str, label: str) -> Decimal:
    try:
        value = Decimal(form.get(name, "").replace(",", "."))
    except InvalidOperation:
        raise ValidationFailed(f"{label} must be a number.", field=name) from None
    if not value.is_finite():
        raise ValidationFailed(f"{label} must be a number.", field=name)
    return value


def optional_decimal(form: Mapping[str, str], name: str, label: str) -> Decimal | None:
    return decimal(form, name, label) if form.get(name, "").strip() else None


def optional_float(form: Mapping[str, str], name: str, label: str) -> float | None:
    if not form.get(name):
        return None
    return float(decimal(form, name, label))


def checked(form: Mapping[str, str], name: str) -> bool:
    return form.get(name) == "on"


def optional_date(raw: str | None, label: str) -> dt.date | None:
    if not raw:
        return None
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise ValidationFailed(f"{label} must be a date (YYYY-MM-DD).") from None


def date_range(chosen: Mapping[str, str]) -> tuple[dt.datetime | None, dt.datetime | None]:
    """The ``from`` and ``to`` filter fields (UTC days, both included) as a time range."""
    return reports.date_bounds(
        optional_date(chosen.get("from"), "From"), optional_date(chosen.get("to"), "To")
    )
