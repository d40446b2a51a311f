"""Holds: reserve before a provider call, settle the actual usage, or release (README: money).

A hold is taken with one conditional ``UPDATE … WHERE balance - reserved >= :hold`` under
the balance's row lock; settling charges at most the hold and writes one ``usage`` row.
Callers import everything from here (``holds.reserve``, ``holds.settle``, ...); the parts
are split by what they do to a hold: ``reserve`` takes it, ``settle`` closes it, ``leases``
keeps it alive or finds it abandoned.
"""

from llm_gateway.services.money.holds.leases import expired_holds, renew_leases
from llm_gateway.services.money.holds.pricing import USD_PLACES, Pricing
from llm_gateway.services.money.holds.reserve import Hold, KeyBudget, reserve
from llm_gateway.services.money.holds.settle import (
    Settlement,
    locked_reservation,
    release,
    settle,
)

__all__ = [
    "USD_PLACES",
    "Hold",
    "KeyBudget",
    "Pricing",
    "Settlement",
    "expired_holds",
    "locked_reservation",
    "release",
    "renew_leases",
    "reserve",
    "settle",
]
