"""GraphQL operations counted by type, root field and outcome (README, "Metrics").

By the operation's first root field (``sendMessage``, ``dialogs``, ``messageEvents``), not
by the operation's name: names are the client's to choose, so counting by them would let
anyone add label values without bound, while root fields are the schema's. A field the
schema does not have (the document failed validation) is counted as ``unknown``.
"""

from __future__ import annotations

from collections.abc import Iterator

from graphql import FieldNode, OperationDefinitionNode
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionContext

from llm_gateway.schema.context import Context

UNKNOWN = "unknown"
INTROSPECTION_FIELDS = frozenset({"__schema", "__type", "__typename"})


class OperationMetrics(SchemaExtension):
    """Counts each operation once, as it ends: ``ok``, ``error`` (any error in its result,
    or raised), or ``cancelled`` (the client went away, a subscription was stopped)."""

    def on_operation(self) -> Iterator[None]:
        outcome = "cancelled"
        try:
            yield
            execution = self.execution_context
            failed = execution.pre_execution_errors or (
                execution.result is not None and execution.result.errors
            )
            outcome = "error" if failed else "ok"
        except Exception:
            outcome = "error"
            raise
        finally:
            context = self.execution_context.context
            if isinstance(context, Context):
                operation_type, root_field = operation_labels(self.execution_context)
                context.services.metrics.graphql_operation(operation_type, root_field, outcome)


def operation_labels(execution: ExecutionContext) -> tuple[str, str]:
    """The operation's type and first root field, each ``unknown`` when it cannot be told."""
    document = execution.graphql_document
    if document is None:
        return UNKNOWN, UNKNOWN
    name = execution.operation_name
    operation = next(
        (
            definition
            for definition in document.definitions
            if isinstance(definition, OperationDefinitionNode)
            and (name is None or (definition.name is not None and definition.name.value == name))
        ),
        None,
    )
    if operation is None:
        return UNKNOWN, UNKNOWN
    first = next(
        (node for node in operation.selection_set.selections if isinstance(node, FieldNode)),
        None,
    )
    root_type = execution.schema._schema.get_root_type(operation.operation)
    field = first.name.value if first is not None else UNKNOWN
    known = field in INTROSPECTION_FIELDS or (root_type is not None and field in root_type.fields)
    return operation.operation.value, field if known else UNKNOWN
