"""The numeric range every layer shares: what a JavaScript number holds exactly.

Balances, amounts, limits and user ids are BIGINT in the database, but the GraphQL schema
sends them as JSON numbers (the ``SafeInt`` scalar), and a browser parses those as IEEE
754 doubles. Each layer checks against this one bound before it commits anything, so a
value that was stored can always be sent: services refuse a change that would leave it,
the scalar refuses such input, and the token verifier refuses such a user id. Nothing
here imports the rest of the package, so settings, auth, services and the schema all can.
"""

from __future__ import annotations

from typing import Final, TypeGuard

MAX_SAFE_INTEGER: Final = 2**53 - 1
"""``Number.MAX_SAFE_INTEGER``: the largest n such that n and n + 1 are both doubles."""

MIN_SAFE_INTEGER: Final = -MAX_SAFE_INTEGER


def is_safe_int(value: object) -> TypeGuard[int]:
    """An ``int`` (not a ``bool``) within ±(2^53 − 1)."""
    return (
        isinstance(value, int)
        and not isinstance(value, bool)
        and MIN_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER
    )


def saturated(value: int) -> int:
    """``value`` capped at MAX_SAFE_INTEGER, for counters that only ever grow."""
    return min(value, MAX_SAFE_INTEGER)
