"""Per-request (or per-socket) context: who is calling, the services, the loaders."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeAlias

from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.types import Info as StrawberryInfo

from llm_gateway.auth import Principal
from llm_gateway.errors import GatewayError, Unauthenticated
from llm_gateway.observability.logs import bind_user
from llm_gateway.schema.loaders import Loaders
from llm_gateway.services.container import Services
from llm_gateway.services.staff.audit import Actor


@dataclass(slots=True)
class Context:
    """Built once per HTTP request, or once per websocket connection.

    ``loaders`` are replaced at the start of every operation (see ``FreshLoaders``),
    so a long-lived socket never serves rows cached by an earlier operation.

    An ``Authorization`` header is verified as the context is built (a failure is kept
    until a field needs the caller): fields may resolve in tasks of their own, and what
    one of them learnt would not reach the request's log lines (its access line).
    """

    request: Request | WebSocket
    response: Response | WebSocket | None
    services: Services
    loaders: Loaders
    connection_params: dict[str, Any] | None = None
    _principal: Principal | None = field(default=None, repr=False)
    _auth_error: GatewayError | None = field(default=None, repr=False)
    _auth_checked: bool = field(default=False, repr=False)

    def __post_init__(self) -> None:
        self._check_header()

    def _check_header(self) -> None:
        if self._auth_checked:
            return
        self._auth_checked = True
        try:
            self._principal = self.services.verifier.verify_header(
                self.request.headers.get("authorization")
            )
        except GatewayError as exc:
            self._auth_error = exc
        if self._principal is not None:
            bind_user(self._principal.user_id)

    @property
    def principal(self) -> Principal:
        """The authenticated caller; raises UNAUTHENTICATED if there is none."""
        self._check_header()
        if self._auth_error is not None:
            raise self._auth_error
        if self._principal is None:
            raise Unauthenticated("Authentication required: send 'Authorization: Bearer <token>'.")
        if self._principal.expired():
            # A websocket outlives its token: operations started after expiry are refused.
            raise Unauthenticated("Token has expired.")
        return self._principal

    def authenticate_socket(self, params: dict[str, Any] | None) -> Principal:
        """Verify a websocket's connection_init payload and remember the caller."""
        principal = self.services.verifier.verify_connection_params(params)
        self._principal, self._auth_error, self._auth_checked = principal, None, True
        bind_user(principal.user_id)  # the socket's task: its operations inherit it
        return principal

    def actor(self) -> Actor:
        """The caller as the audit log records them."""
        client = self.request.client
        return Actor(
            user_id=self.principal.user_id,
            ip_address=client.host if client else None,
            user_agent=self.request.headers.get("user-agent"),
            request_id=self.request_id,
        )

    @property
    def request_id(self) -> str | None:
        value = self.request.scope.get("state", {}).get("request_id")
        return value if isinstance(value, str) else None


Info: TypeAlias = StrawberryInfo[Context, None]
