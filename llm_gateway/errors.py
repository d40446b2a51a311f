"""Domain errors: the failures a client can cause or must handle, each with a stable code.

They carry no GraphQL: the schema layer turns them into errors with ``extensions.code``
(and the details below as further extensions); anything else is masked.
"""

from __future__ import annotations

from typing import Any, ClassVar


class GatewayError(Exception):
    """An expected failure with a public message and a stable machine-readable code."""

    code: ClassVar[str] = "INTERNAL_SERVER_ERROR"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class Unauthenticated(GatewayError):
    code = "UNAUTHENTICATED"


class Forbidden(GatewayError):
    code = "FORBIDDEN"


class NotFound(GatewayError):
    code = "NOT_FOUND"


class ValidationFailed(GatewayError):
    """Input that is well-formed GraphQL but breaks a rule; ``field`` names the input."""

    code = "VALIDATION_FAILED"

    def __init__(self, message: str, *, field: str | None = None, **details: Any) -> None:
        if field is not None:
            details["field"] = field
        super().__init__(message, **details)


class Conflict(GatewayError):
    code = "CONFLICT"


class InsufficientBalance(GatewayError):
    code = "INSUFFICIENT_BALANCE"


class QuotaExceeded(GatewayError):
    code = "QUOTA_EXCEEDED"


class RateLimited(GatewayError):
    code = "RATE_LIMITED"


class ProviderUnavailable(GatewayError):
    code = "PROVIDER_UNAVAILABLE"


class ServiceUnavailable(GatewayError):
    """A part the gateway needs (the broker for live delivery) is down; retry shortly."""

    code = "SERVICE_UNAVAILABLE"
