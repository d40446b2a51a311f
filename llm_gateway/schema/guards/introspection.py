"""Who may introspect the schema: ``GRAPHQL_INTROSPECTION`` (all | authenticated | off).

With DEBUG off the default is ``authenticated``: a caller without a valid bearer token
cannot list the schema (``__schema``, ``__type``), which spares the anonymous internet a
map of every staff field. ``__typename`` is no introspection of the schema and is always
allowed; clients and health probes ask for it. Staff using GraphiQL set the
``Authorization`` header in its headers pane, and the docs load as before.

A refused document is a validation error (HTTP 200, like every other GraphQL error of
this server) coded UNAUTHENTICATED, or FORBIDDEN when introspection is off. The rule is
one of two fixed classes added per operation, so ``CachedDocuments`` caches its verdict
like any other rule's (its cache is keyed by the rule classes).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, ClassVar

from graphql import FieldNode, GraphQLError, ValidationRule
from strawberry.extensions import SchemaExtension

from llm_gateway.errors import Forbidden, GatewayError, Unauthenticated
from llm_gateway.settings import IntrospectionMode

INTROSPECTION_FIELDS = frozenset({"__schema", "__type"})
MENTIONS_INTROSPECTION = re.compile(r"__(?:schema|type)(?![_0-9A-Za-z])")


class _RefuseIntrospection(ValidationRule):
    """Reports the first ``__schema`` or ``__type`` field, fragments included."""

    refusal: ClassVar[GatewayError]

    def __init__(self, context: Any) -> None:
        super().__init__(context)
        self._reported = False

    def enter_field(self, node: FieldNode, *_args: object) -> None:
        if node.name.value in INTROSPECTION_FIELDS and not self._reported:
            self._reported = True
            self.report_error(GraphQLError(self.refusal.message, node, original_error=self.refusal))


class RefuseAnonymousIntrospection(_RefuseIntrospection):
    refusal = Unauthenticated(
        "Introspection requires authentication: send 'Authorization: Bearer <token>'."
    )


class RefuseAllIntrospection(_RefuseIntrospection):
    refusal = Forbidden("Introspection is disabled on this server.")


def is_authenticated(context: object) -> bool:
    """Whether the caller presented a valid token (the context raises if not)."""
    try:
        return getattr(context, "principal", None) is not None
    except GatewayError:
        return False


class IntrospectionGate(SchemaExtension):
    """Adds the refusing rule for callers the mode does not let introspect."""

    def __init__(self, *, mode: IntrospectionMode) -> None:
        super().__init__()
        self.mode = mode

    def on_operation(self) -> Iterator[None]:
        rule = self._rule()
        if rule is not None:
            context = self.execution_context
            context.validation_rules = (*context.validation_rules, rule)
        yield

    def _rule(self) -> type[ValidationRule] | None:
        context = self.execution_context
        if self.mode == "all" or not MENTIONS_INTROSPECTION.search(context.query or ""):
            # The fields cannot be spelled any other way: no rule and no token check, so
            # the document's cached verdict is the same for every caller.
            return None
        if self.mode == "off":
            return RefuseAllIntrospection
        return None if is_authenticated(context.context) else RefuseAnonymousIntrospection
