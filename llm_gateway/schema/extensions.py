"""Schema extensions: error shaping and masking, fresh loaders per operation."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from graphql import GraphQLError
from strawberry.exceptions import StrawberryInputCoercionError
from strawberry.extensions import MaskErrors, SchemaExtension

from llm_gateway.errors import GatewayError, ValidationFailed
from llm_gateway.schema.context import Context
from llm_gateway.schema.loaders import Loaders

logger = logging.getLogger("llm_gateway.graphql")

UNEXPECTED_MESSAGE = "Unexpected error."


def is_unexpected(error: GraphQLError) -> bool:
    """Raised while resolving and not one of ours: a bug, to be masked and logged."""
    return error.path is not None and not isinstance(
        error.original_error, GatewayError | StrawberryInputCoercionError
    )


def client_code(error: GraphQLError) -> str:
    """The code of an error the client caused before anything was resolved."""
    if error.message.startswith("Syntax Error"):
        return "GRAPHQL_PARSE_FAILED"
    return "GRAPHQL_VALIDATION_FAILED"


class ShapeErrors(MaskErrors):
    """Give every error a stable ``extensions.code``; mask whatever we did not expect.

    - a ``GatewayError`` keeps its public message; its code and details become extensions;
    - parse, validation and variable errors keep graphql-core's message;
    - anything else becomes "Unexpected error." (the schema logs it with a traceback).
    """

    def __init__(self) -> None:
        super().__init__(error_message=UNEXPECTED_MESSAGE)

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        return [self._shape(error) for error in errors]

    def _shape(self, error: GraphQLError) -> GraphQLError:
        original = error.original_error
        if isinstance(original, GatewayError):
            extensions = {"code": original.code, **original.details}
            message = original.message
        elif error.path is None:
            extensions = {**(error.extensions or {}), "code": client_code(error)}
            message = error.message
        elif isinstance(original, StrawberryInputCoercionError):
            # e.g. null given for an input field that may be omitted but not nulled
            extensions = {"code": ValidationFailed.code}
            message = str(original)
        else:
            extensions = {"code": "INTERNAL_SERVER_ERROR"}
            message = UNEXPECTED_MESSAGE
        return GraphQLError(
            message=message,
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            original_error=None,
            extensions=extensions,
        )


class FreshLoaders(SchemaExtension):
    """New DataLoaders for every operation, also on a long-lived websocket."""

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context.context
        if isinstance(context, Context):
            context.loaders = Loaders(context.services.db)
        yield
