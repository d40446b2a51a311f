"""Strawberry's ASGI view, hardened: a malformed request is the client's mistake.

Over HTTP, whatever strawberry refuses before running an operation is answered with
GraphQL-shaped errors (``{"errors": [{"message", "extensions": {"code"}}]}``) and its
status (400, 404, 405), not plain text; strawberry's own checks let a body that is not a
JSON object (``null``, ``42``, a string, bytes that are not UTF-8) through to code that
crashed on it (HTTP 500), and ran a subscription sent over HTTP like a query (it failed).
A string with half a surrogate pair (``"\\ud83d"``) is refused as JSON, here and over
the websocket, before it reaches a database that cannot store it.

Codes: BAD_REQUEST for the request's envelope (body, content type, missing query, a
subscription over plain HTTP), GRAPHQL_VALIDATION_FAILED when the document and
``operationName`` identify no one operation (``llm_gateway.schema.guards.one_operation``).

Subscriptions are also served over HTTP, for networks that drop websockets: the
graphql-sse protocol (distinct connections: ``Accept: text/event-stream``) and Apollo's
multipart subscriptions (``Accept: multipart/mixed;subscriptionSpec=1.0``), both
strawberry's own transports, with the same context (the ``Authorization`` header), limits
and error masking as the websocket. Such a stream ends with the protocol's completion
when the server stops (after a drain's answers ended), instead of being cut.

Over the websocket (graphql-transport-ws), a message of a shape the protocol does not
define closes the socket with 4400, as the protocol says; strawberry let such a message
raise (``[1,2]``, ``null``, a string payload: the connection dropped without a close
code) or sent a bare ``complete`` (a query that is no string).
"""

from __future__ import annotations

import json
import re
from typing import Any, cast

import orjson
from cross_web import AsyncHTTPRequestAdapter, HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import MissingQueryError
from strawberry.http import GraphQLRequestData
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import Message
from strawberry.types import ExecutionResult
from strawberry.types.execution import SubscriptionExecutionResult
from strawberry.types.graphql import OperationType

from llm_gateway.http.http_subscriptions import until_stopping
from llm_gateway.schema.context import Context
from llm_gateway.schema.extensions import request_error_code

STATUS_CODES = {400: "BAD_REQUEST", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}
SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")  # paired or not
SUBSCRIPTION_OVER_HTTP = (
    "A subscription needs a streaming transport: the websocket at /graphql "
    "(graphql-transport-ws), or HTTP with 'Accept: text/event-stream' (graphql-sse) or "
    "'Accept: multipart/mixed;subscriptionSpec=1.0'."
)


class RequestError(HTTPException):
    """A refused request, with the code its GraphQL error carries."""

    def __init__(self, status_code: int, reason: str, code: str) -> None:
        super().__init__(status_code, reason)
        self.code = code


def error_response(error: HTTPException) -> Response:
    code = (
        error.code
        if isinstance(error, RequestError)
        else STATUS_CODES.get(error.status_code, "BAD_REQUEST")
    )
    body = {"errors": [{"message": error.reason, "extensions": {"code": code}}]}
    return JSONResponse(body, status_code=error.status_code)


def message_problem(message: object) -> str | None:
    """Why a graphql-transport-ws message is malformed (the close reason), or None.

    Only what strawberry's handler would index blindly is checked; it refuses unknown
    types and a bad ``connection_init`` payload itself.
    """
    if not isinstance(message, dict):
        return "Message must be a JSON object"
    kind = message.get("type")
    if not isinstance(kind, str):
        return "Message type must be a string"
    if kind in ("subscribe", "complete") and not isinstance(message.get("id"), str):
        return f"The {kind} message needs a string id"
    if kind != "subscribe":
        return None
    payload = message.get("payload")
    if not isinstance(payload, dict):
        return "The subscribe message needs a payload object"
    if not isinstance(payload.get("query"), str):
        return "The subscribe payload needs a query string"
    for key, kind_of in (("variables", dict), ("extensions", dict), ("operationName", str)):
        value = payload.get(key)
        if value is not None and not isinstance(value, kind_of):
            shape = "an object" if kind_of is dict else "a string"
            return f"The subscribe payload's {key} must be {shape} or null"
    return None


def document_too_long(query: str, context: Context) -> str | None:
    """Why a document is refused before it is parsed (too many characters), or None.

    graphql-core's lexer reads a document character by character: a megabyte of string,
    comment or whitespace costs 40-160 ms of CPU before the token limit can say anything.
    Long values belong in variables, which are JSON.
    """
    limit = context.services.settings.graphql_max_document_chars
    if len(query) <= limit:
        return None
    return (
        f"The GraphQL document has {len(query)} characters; at most {limit} are allowed "
        "(send long values as variables)."
    )


class TransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """graphql-transport-ws, with malformed messages refused before they are read."""

    async def handle_message(self, message: Message) -> None:
        problem = message_problem(message)
        if problem is not None:
            await self.handle_invalid_message(problem)
            return
        if message["type"] == "subscribe":
            too_long = document_too_long(message["payload"]["query"], self.context)
            if too_long is not None:  # this operation fails; the socket stays
                await self.send_message(
                    {
                        "id": message["id"],
                        "type": "error",
                        "payload": [
                            {"message": too_long, "extensions": {"code": "PAYLOAD_TOO_LARGE"}}
                        ],
                    }
                )
                return
        await super().handle_message(message)


class HardenedGraphQL(GraphQL[Context, None]):
    """The view's hooks for malformed requests (see the module docstring)."""

    graphql_transport_ws_handler_class = TransportWSHandler

    async def execute_operation(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        request_data: GraphQLRequestData | list[GraphQLRequestData],
        context: Context,
        root_value: None,
        sub_response: Response,
    ) -> ExecutionResult | list[ExecutionResult] | SubscriptionExecutionResult:
        """As strawberry's, with the document's length checked before an HTTP stream and
        the stream ended when the server stops."""
        streamed = isinstance(request_data, GraphQLRequestData) and self._get_stream_transport(
            request_data.protocol
        )
        if streamed and isinstance(request_data, GraphQLRequestData):
            too_long = document_too_long(request_data.query or "", context)
            if too_long is not None:
                raise RequestError(413, too_long, "PAYLOAD_TOO_LARGE")
        result = await super().execute_operation(
            request, request_adapter, request_data, context, root_value, sub_response
        )
        if streamed and isinstance(result, SubscriptionExecutionResult):
            stream = until_stopping(result, context.services.intake.stopping)
            return cast("SubscriptionExecutionResult", stream)  # an async iterator, as it asks
        return result

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        try:
            response = await self.run(Request(scope, receive))
        except HTTPException as exc:  # strawberry's answer is plain text
            response = error_response(exc)
        await response(scope, receive, send)

    def encode_json(self, data: object) -> str:
        """Responses and websocket frames as compact JSON text, by orjson (every delta of
        every answer passes here); the standard library takes what orjson refuses."""
        try:
            return orjson.dumps(data).decode()
        except TypeError:  # a lone surrogate, an integer past 64 bits
            return json.dumps(data, separators=(",", ":"))

    def decode_json(self, data: str | bytes) -> object:
        """JSON as Python reads it, refusing strings that are no Unicode text.

        A ``\\udXXX`` escape without its pair decodes to a lone surrogate, which no
        database driver can encode: it failed deep inside a resolver (an unexpected error).
        Raised as a JSON error, it is a 400 over HTTP and a 4400 close over the websocket.
        """
        parsed = super().decode_json(data)
        text = data if isinstance(data, str) else data.decode("utf-8", "replace")
        if SURROGATE_ESCAPE.search(text):  # rare: only then walk the strings
            try:
                json.dumps(parsed, ensure_ascii=False).encode()
            except UnicodeEncodeError as exc:
                raise json.JSONDecodeError("Unpaired surrogate escape", text, 0) from exc
        return parsed

    def parse_json(self, data: str | bytes) -> Any:
        """A request body (or multipart ``operations``): an object, or a list (a batch)."""
        try:
            text = data.decode("utf-8-sig") if isinstance(data, bytes) else data
        except UnicodeDecodeError:
            raise RequestError(
                400, "Unable to parse request body as JSON: it is not UTF-8.", "BAD_REQUEST"
            ) from None
        parsed = super().parse_json(text)
        if not isinstance(parsed, dict | list):
            raise RequestError(
                400,
                'The request body must be a JSON object: {"query": …, "variables": …}.',
                "BAD_REQUEST",
            )
        return parsed

    async def execute_single(
        self,
        request: Request | WebSocket,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response,
        context: Context,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        # A subscription without a streaming transport's Accept header: strawberry ran it
        # like a query, and it failed.
        too_long = document_too_long(request_data.query or "", context)
        if too_long is not None:
            raise RequestError(413, too_long, "PAYLOAD_TOO_LARGE")
        allowed = {OperationType.QUERY, OperationType.MUTATION}
        if request_adapter.method == "GET":
            allowed = {OperationType.QUERY} if self.allow_queries_via_get else set()
        try:
            return await self.schema.execute(
                request_data.query,
                root_value=root_value,
                variable_values=request_data.variables,
                context_value=context,
                operation_name=request_data.operation_name,
                allowed_operation_types=allowed,
                operation_extensions=request_data.extensions,
            )
        except InvalidOperationTypeError as exc:
            reason = (
                SUBSCRIPTION_OVER_HTTP
                if exc.operation_type is OperationType.SUBSCRIPTION
                else exc.as_http_error_reason(request_adapter.method)
            )
            raise RequestError(400, reason, request_error_code(exc)) from exc
        except CannotGetOperationTypeError as exc:
            raise RequestError(400, exc.as_http_error_reason(), request_error_code(exc)) from exc
        except MissingQueryError as exc:
            raise RequestError(
                400, "No GraphQL query found in the request.", request_error_code(exc)
            ) from exc


__all__ = [
    "HardenedGraphQL",
    "RequestError",
    "TransportWSHandler",
    "message_problem",
]
