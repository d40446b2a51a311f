"""``SafeInt``: the schema's integers that do not fit GraphQL's 32-bit ``Int``.

Balances, amounts, limits, token counts and user ids are BIGINT in the database; as
``Int`` a balance of 2^31 made every read of it (and the response of the top-up that
caused it, after its commit) fail. ``SafeInt`` is sent as a plain JSON number, so it
stops at what a JavaScript number holds exactly (``llm_gateway.bounds``) rather than at
2^63: a browser would silently round anything larger. Annotate a field or argument with
``SafeInt`` where it would have been ``int``; ``build_schema`` maps it via ``SCALAR_MAP``.

``Decimal`` keeps strawberry's scalar (text in, text out) but is always sent in
fixed-point notation (``plain_decimal``).
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import TYPE_CHECKING, NewType, TypeAlias

import strawberry
from graphql import IntValueNode, ValueNode
from strawberry.schema.types.base_scalars import DecimalDefinition
from strawberry.types.scalar import ScalarDefinition

from llm_gateway.bounds import MAX_SAFE_INTEGER, MIN_SAFE_INTEGER, is_safe_int
from llm_gateway.errors import ValidationFailed

if TYPE_CHECKING:
    # For mypy a SafeInt is any int: the range is checked at the schema's edge, and
    # wrapping every value in SafeInt(...) would check nothing.
    SafeInt: TypeAlias = int
else:
    SafeInt = NewType("SafeInt", int)

DESCRIPTION = (
    "An integer from -(2^53-1) to 2^53-1, sent as a JSON number so JavaScript clients stay exact."
)
REFUSED = f"SafeInt takes an integer from {MIN_SAFE_INTEGER} to {MAX_SAFE_INTEGER}."
MAX_LITERAL_LENGTH = len(str(MIN_SAFE_INTEGER))
"""Longer digit strings are out of range; not parsing them spares int() huge inputs."""


def serialize(value: object) -> int:
    """Send ``value`` as a JSON number.

    Services keep every value they store within range, so failing here is a bug: the
    error is masked and logged like any other.
    """
    if is_safe_int(value):
        return value
    raise ValueError(f"SafeInt cannot represent {value!r}")


def parse_value(value: object) -> int:
    """A variable's value: a JSON number that is an integer within range.

    JSON has one number type, so ``12.0`` is the integer 12 (as the built-in ``Int`` has
    it); ``1.5``, strings and booleans are refused. ``ValidationFailed`` rather than a
    ``GraphQLError``: graphql-core keeps it as the error's cause, and ``ShapeErrors``
    turns that into ``VALIDATION_FAILED``.
    """
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if is_safe_int(value):
        return value
    raise ValidationFailed(REFUSED)


def parse_literal(node: ValueNode, _variables: object = None) -> int:
    """An inline literal: an integer literal within range (``12.0`` is a Float literal)."""
    if isinstance(node, IntValueNode) and len(node.value) <= MAX_LITERAL_LENGTH:
        value = int(node.value)
        if is_safe_int(value):
            return value
    raise ValidationFailed(REFUSED)


SAFE_INT: ScalarDefinition = strawberry.scalar(
    name="SafeInt",
    description=DESCRIPTION,
    serialize=serialize,
    parse_value=parse_value,
    parse_literal=parse_literal,
)


def plain_decimal(value: object) -> str:
    """A Decimal as fixed-point text: a sum of ``numeric(…, 8)`` zeros is "0.00000000",
    not the "0E-8" ``str`` gives, which clients would have to parse as an exponent."""
    if not isinstance(value, Decimal):
        value = Decimal(str(value))
    return format(value, "f")


DECIMAL: ScalarDefinition = dataclasses.replace(DecimalDefinition, serialize=plain_decimal)

SCALAR_MAP: dict[object, ScalarDefinition] = {SafeInt: SAFE_INT, Decimal: DECIMAL}
"""``StrawberryConfig.scalar_map`` of every schema that uses the types here."""
