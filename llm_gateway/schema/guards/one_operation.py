"""A document with several operations must name the one to run.

The GraphQL spec (GetOperation) makes a request with several operations and no
``operationName`` an error; strawberry instead runs the first one, so a client that
forgot the name silently got another operation than it may have meant. ``OneOperation``
refuses such a request the way strawberry refuses one naming an operation the document
lacks: HTTP 400 (see ``llm_gateway.http.graphql_view``), or over the websocket a close with
4400, as graphql-transport-ws does for an operation it cannot identify.
"""

from __future__ import annotations

from collections.abc import Iterator

from graphql import OperationDefinitionNode
from strawberry.extensions import SchemaExtension
from strawberry.schema.exceptions import CannotGetOperationTypeError


class OperationNotNamed(CannotGetOperationTypeError):
    """Several operations, none named by the request."""

    def __init__(self) -> None:
        super().__init__(None)

    def as_http_error_reason(self) -> str:
        return "Must provide operationName: the document contains several operations."


class OneOperation(SchemaExtension):
    """Refuses a document of several operations when the request names none."""

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        # ExecutionContext.operation_name falls back to the first operation's name, which
        # is the very behaviour refused here: only the name the request gave will do.
        provided = getattr(context, "_provided_operation_name", None)
        if provided is None and document is not None:
            operations = sum(isinstance(d, OperationDefinitionNode) for d in document.definitions)
            if operations > 1:
                raise OperationNotNamed
        yield
