"""A balance view as JSON, so an answer's end can carry the balance it left.

The transaction that settles an answer reads the user's balance and limit windows after
the charge; its ``MessageCompleted`` event carries them, and a subscriber shows them
without a database read of its own. An event without them (from an earlier version, or
one whose view could not be read) makes the subscriber read the balance, as before.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from llm_gateway.services.money.balances import BalanceView, Window


def _window(window: Window) -> list[Any]:
    return [window.limit, window.used, window.starts_at.isoformat(), window.resets_at.isoformat()]


def view_payload(view: BalanceView) -> dict[str, Any]:
    """``view`` as JSON-safe values."""
    return {
        "userId": view.user_id,
        "balance": view.balance,
        "reserved": view.reserved,
        "lifetimeUsed": view.lifetime_used,
        "createdAt": view.created_at.isoformat() if view.created_at else None,
        "daily": _window(view.daily),
        "monthly": _window(view.monthly),
    }


def _window_of(name: str, raw: list[Any]) -> Window:
    limit, used, starts_at, resets_at = raw
    return Window(
        name,
        None if limit is None else int(limit),
        int(used),
        dt.datetime.fromisoformat(starts_at),
        dt.datetime.fromisoformat(resets_at),
    )


def view_of(payload: Any) -> BalanceView | None:
    """The view a payload carries, or None when there is none (or it is malformed)."""
    if not isinstance(payload, dict):
        return None
    try:
        created = payload["createdAt"]
        return BalanceView(
            user_id=int(payload["userId"]),
            balance=int(payload["balance"]),
            reserved=int(payload["reserved"]),
            lifetime_used=int(payload["lifetimeUsed"]),
            daily=_window_of("daily", payload["daily"]),
            monthly=_window_of("monthly", payload["monthly"]),
            created_at=dt.datetime.fromisoformat(created) if created else None,
        )
    except (KeyError, TypeError, ValueError):
        return None
