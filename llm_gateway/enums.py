"""The closed sets of words every layer shares: message states, roles, ledger kinds, providers.

Each set is written once, here. The database CHECK constraints, the GraphQL enums and the
services all derive from these classes, so a new member cannot reach one layer and miss
another. They are ``StrEnum``s: a member *is* its string, so rows read back as plain
``str`` compare equal to members, and members bind, serialise and format as their value.
Member order is part of the contract: it is the order of the values in each CHECK
constraint (and so of the migrations) and of the values in ``schema.graphql``.
Nothing here imports the rest of the package, so every layer can import it.
"""

from __future__ import annotations

from enum import StrEnum, unique


@unique
class MessageStatus(StrEnum):
    """Where a message stands; only an assistant answer is ever anything but COMPLETE."""

    COMPLETE = "complete"
    STREAMING = "streaming"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"


@unique
class Role(StrEnum):
    """Who wrote a message (GraphQL: ``MessageRole``)."""

    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"


@unique
class LedgerKind(StrEnum):
    """Why tokens moved, one per ledger row (GraphQL: ``TransactionKind``)."""

    GRANT = "grant"
    TOPUP = "topup"
    USAGE = "usage"
    REFUND = "refund"
    ADJUSTMENT = "adjustment"


@unique
class ReservationState(StrEnum):
    """A hold is HELD until its generation settles it (usage charged) or releases it."""

    HELD = "held"
    SETTLED = "settled"
    RELEASED = "released"


@unique
class Provider(StrEnum):
    """The upstream a model is served by: one adapter each in ``llm_gateway.providers``."""

    OPENAI = "openai"
    ANTHROPIC = "anthropic"
    GIGACHAT = "gigachat"
    MOCK = "mock"
