"""Errors in OpenAI's envelope, ``{"error": {"message", "type", "param", "code"}}``.

The status decides what an SDK does: the official ``openai`` SDK retries 408, 409, 429 and
5xx unless the response says ``x-should-retry: false``, which every error that a retry
cannot fix carries (no money, a spent daily limit, a key reused with another body).
"""

from __future__ import annotations

import datetime as dt
import math
import time
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.responses import Response

from llm_gateway.errors import GatewayError


@dataclass(frozen=True, slots=True)
class ApiError:
    status: int
    message: str
    type: str
    code: str | None = None
    param: str | None = None
    retry_after: int | None = None
    retry: bool | None = None  # None: the SDK's own rule for the status

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }

    def response(self) -> Response:
        headers: dict[str, str] = {}
        if self.retry_after is not None:
            headers["retry-after"] = str(self.retry_after)
        if self.retry is not None:
            headers["x-should-retry"] = "true" if self.retry else "false"
        if self.status == 401:
            headers["www-authenticate"] = "Bearer"
        return Response(
            orjson.dumps(self.body()),
            status_code=self.status,
            headers=headers,
            media_type="application/json",
        )


INVALID = "invalid_request_error"

# What an upstream failure (after retries and the fallback) becomes for the client.
UPSTREAM: dict[str, tuple[int, str, str]] = {
    "RATE_LIMITED": (503, "server_error", "upstream_rate_limited"),
    "PROVIDER_UNAVAILABLE": (503, "server_error", "upstream_unavailable"),
    "PROVIDER_TIMEOUT": (504, "server_error", "upstream_timeout"),
    "PROVIDER_AUTH": (502, "server_error", "upstream_auth_failed"),
    "MODEL_NOT_FOUND": (502, "server_error", "upstream_model_not_found"),
    "PROVIDER_BAD_REQUEST": (400, INVALID, "upstream_refused_request"),
    "STREAM_CUT": (502, "server_error", "upstream_stream_cut"),
    "INTERRUPTED": (503, "server_error", "interrupted"),
    "SERVICE_UNAVAILABLE": (503, "server_error", "service_unavailable"),
}


def upstream_error(code: str | None, message: str | None) -> ApiError:
    status, kind, api_code = UPSTREAM.get(code or "", (500, "server_error", "internal_error"))
    return ApiError(status, message or "The request failed.", kind, api_code)


def from_gateway(exc: GatewayError) -> ApiError:
    """The envelope for a domain error raised before anything was streamed."""
    details = exc.details
    param = details.get("field") if isinstance(details.get("field"), str) else None
    match exc.code:
        case "VALIDATION_FAILED":
            reason = details.get("reason")
            return ApiError(
                400, exc.message, INVALID, reason if isinstance(reason, str) else None, param
            )
        case "UNAUTHENTICATED":
            return ApiError(401, exc.message, INVALID, "invalid_api_key")
        case "FORBIDDEN":
            return ApiError(403, exc.message, INVALID, "model_not_allowed", param)
        case "NOT_FOUND":
            return ApiError(404, exc.message, INVALID, "model_not_found", param)
        case "CONFLICT":
            reason = details.get("reason")
            in_progress = reason == "idempotency_key_in_progress"
            return ApiError(
                409,
                exc.message,
                INVALID,
                reason if isinstance(reason, str) else "conflict",
                param,
                retry_after=1 if in_progress else None,
                retry=in_progress,
            )
        case "INSUFFICIENT_BALANCE":
            return ApiError(
                402, exc.message, "insufficient_quota", "insufficient_quota", retry=False
            )
        case "QUOTA_EXCEEDED":
            window = str(details.get("window") or "daily")
            return ApiError(
                429,
                exc.message,
                "rate_limit_exceeded",
                f"{_snake(window)}_limit_exceeded",
                retry_after=_seconds_until(details.get("resetsAt")),
                retry=False,
            )
        case "RATE_LIMITED":
            retry_after = details.get("retryAfter")
            return ApiError(
                429,
                exc.message,
                "rate_limit_exceeded",
                "rate_limit_exceeded",
                retry_after=retry_after if isinstance(retry_after, int) else 1,
            )
        case _:
            return upstream_error(exc.code, exc.message)


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


def _seconds_until(moment: object) -> int | None:
    if not isinstance(moment, str):
        return None
    try:
        when = dt.datetime.fromisoformat(moment)
    except ValueError:
        return None
    return max(1, math.ceil(when.timestamp() - time.time()))
