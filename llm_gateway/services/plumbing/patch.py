"""The sentinel of partial updates: a field left as ``UNSET`` keeps its stored value."""

from __future__ import annotations

from typing import Final


class Unset:
    """Not given (unlike ``None``, which clears a value)."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = Unset()
