"""Schema extensions: error shaping and masking, fresh loaders per operation."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from graphql import GraphQLError
from strawberry.exceptions import MissingQueryError, StrawberryInputCoercionError
from strawberry.extensions import MaskErrors, SchemaExtension
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError

from llm_gateway.errors import GatewayError, ValidationFailed
from llm_gateway.schema.context import Context
from llm_gateway.schema.loaders import Loaders

logger = logging.getLogger("llm_gateway.graphql")

UNEXPECTED_MESSAGE = "Unexpected error."


# The request names no operation it may run. Over HTTP they leave the operation as
# exceptions (HTTP 400, see llm_gateway.http.graphql_view); a streamed operation (the
# websocket) gets them as errors, and the socket closes on them (4400) by their original.
REQUEST_ERRORS = (MissingQueryError, CannotGetOperationTypeError, InvalidOperationTypeError)


def request_error_code(error: Exception) -> str:
    """The code of a request that names no runnable operation."""
    if isinstance(error, CannotGetOperationTypeError):  # none, or an unknown one, is named
        return "GRAPHQL_VALIDATION_FAILED"
    return "BAD_REQUEST"


def is_unexpected(error: GraphQLError) -> bool:
    """Not one of ours and not the client's: a bug, to be masked and logged.

    That is an exception raised while resolving a field (the error has a path), or one
    raised outside any field (a crashing validation rule or extension), which strawberry
    wraps with neither a path nor a location. The client's own errors (parse, validation,
    variables) point at the document, or carry no exception at all.
    """
    original = error.original_error
    if isinstance(original, (GatewayError, StrawberryInputCoercionError, *REQUEST_ERRORS)):
        return False
    if error.path is not None:
        return True
    return original is not None and not isinstance(original, GraphQLError) and not error.nodes


def log_unexpected(error: GraphQLError, context: object) -> None:
    """Log an unexpected error with its traceback and the request id."""
    original = error.original_error
    request_id = context.request_id if isinstance(context, Context) else None
    logger.error(
        "unexpected error at %s (request %s)",
        ".".join(str(p) for p in error.path or ()) or "(operation)",
        request_id,
        exc_info=(type(original), original, original.__traceback__)
        if original is not None
        else None,
        extra={"request_id": request_id},
    )


def gateway_cause(error: GraphQLError) -> GatewayError | None:
    """The domain error behind ``error``, through graphql-core's wrapping.

    A scalar that refuses an input (``SafeInt`` raises ``ValidationFailed``) is the cause
    of graphql-core's error for an inline literal, and the cause of the cause for a
    variable ("Variable '$x' has invalid value: …").
    """
    original = error.original_error
    while isinstance(original, GraphQLError):
        original = original.original_error
    return original if isinstance(original, GatewayError) else None


def client_code(error: GraphQLError) -> str:
    """The code of an error the client caused before anything was resolved."""
    if error.message.startswith("Syntax Error"):
        return "GRAPHQL_PARSE_FAILED"
    return "GRAPHQL_VALIDATION_FAILED"


class ShapeErrors(MaskErrors):
    """Give every error a stable ``extensions.code``; mask whatever we did not expect.

    - a ``GatewayError`` keeps its public message; its code and details become extensions
      (one a scalar raised on an input keeps graphql-core's message, which quotes it);
    - parse, validation and variable errors keep graphql-core's message;
    - anything else becomes "Unexpected error." (the schema logs it with a traceback).
    """

    def __init__(self) -> None:
        super().__init__(error_message=UNEXPECTED_MESSAGE)

    def on_operation(self) -> Iterator[None]:
        # What escapes the operation becomes an error only after this hook has run,
        # so it would reach the client raw and without a code: shape it here.
        try:
            yield from super().on_operation()
        except (*REQUEST_ERRORS, GraphQLError):
            raise
        except Exception as exc:
            error = GraphQLError(str(exc), original_error=exc)
            if is_unexpected(error):
                log_unexpected(error, self.execution_context.context)
            raise self._shape(error) from None

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        return [self._shape(error) for error in errors]

    def _shape(self, error: GraphQLError) -> GraphQLError:
        original = error.original_error
        if isinstance(original, REQUEST_ERRORS):
            # The original stays: the websocket handler closes the socket on it.
            return GraphQLError(
                error.message,
                original_error=original,
                extensions={"code": request_error_code(original)},
            )
        cause = gateway_cause(error)
        if cause is not None:
            extensions = {"code": cause.code, **cause.details}
            # An input refused while graphql-core coerced it: its message names the
            # argument or variable and the value, and quotes ours.
            coerced = error.path is None and bool(error.nodes)
            message = error.message if coerced else cause.message
        elif is_unexpected(error):
            extensions = {"code": "INTERNAL_SERVER_ERROR"}
            message = UNEXPECTED_MESSAGE
        elif error.path is None:
            extensions = {**(error.extensions or {}), "code": client_code(error)}
            message = error.message
        else:
            # A StrawberryInputCoercionError, e.g. null given for an input field that may
            # be omitted but not nulled.
            extensions = {"code": ValidationFailed.code}
            message = str(original)
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
