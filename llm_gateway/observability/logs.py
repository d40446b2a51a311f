"""Logs: one format for the gateway's loggers and uvicorn's, text (the default) or JSON.

``LOG_FORMAT=json`` writes one JSON object per line on stderr: ``time`` (ISO 8601, UTC),
``level``, ``logger``, ``message``, then, when known, ``request_id``, ``user_id``,
``trace_id`` and ``exception`` (the formatted traceback). uvicorn's access lines also carry
``client``, ``method``, ``path``, ``http_version``, ``status`` and ``duration_ms``.

Who and what a line is about travels in context variables, not in arguments: the request-id
middleware binds the request as it arrives, and whatever authenticates a caller (GraphQL's
context, ``/v1``'s key check, the admin's session) binds the user. A task started while
serving a request (an answer's generation) inherits both, so its lines name them too.
This module imports nothing of the gateway: every layer may log.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import logging.config
import time
from contextvars import ContextVar
from functools import cache
from typing import Any, Literal

LogFormat = Literal["text", "json"]

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

ACCESS_LOGGER = "uvicorn.access"
ACCESS_FIELDS = ("client", "method", "path", "http_version", "status")
"""What uvicorn passes as the arguments of an access line, in its order."""

_request_id: ContextVar[str | None] = ContextVar("llm_gateway_request_id", default=None)
_user_id: ContextVar[int | None] = ContextVar("llm_gateway_user_id", default=None)
_started: ContextVar[float | None] = ContextVar("llm_gateway_request_started", default=None)


def bind_request(request_id: str) -> None:
    """Lines logged from here on in this task (and tasks it starts) carry ``request_id``.

    Called as a request or websocket arrives. It forgets any user bound before, so a task
    that serves one request after another (an ASGI test client) never names the wrong one.
    Nothing is unbound at the end: uvicorn runs each request in a task of its own, and its
    own lines about the request (the access line, an unhandled error) come after the app.
    """
    _request_id.set(request_id)
    _user_id.set(None)
    _started.set(time.perf_counter())


def bind_user(user_id: int) -> None:
    """The caller is authenticated: lines logged from here on carry ``user_id``."""
    _user_id.set(user_id)


def current_request_id() -> str | None:
    return _request_id.get()


def current_user_id() -> int | None:
    return _user_id.get()


@cache
def _tracing_available() -> bool:
    try:
        import opentelemetry.trace  # noqa: F401
    except ImportError:
        return False
    return True


def current_trace_id() -> str | None:
    """The active OpenTelemetry span's trace id (32 hex digits), if there is a valid one."""
    if not _tracing_available():
        return None
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    return trace.format_trace_id(context.trace_id) if context.is_valid else None


def _utc(created: float) -> str:
    moment = dt.datetime.fromtimestamp(created, dt.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (newlines in messages are escaped).

    The request, user and trace are read when the record is formatted, which for a stream
    handler is inside the logging call, in the context of the code that logged. A record
    that carries its own (``extra={"request_id": ...}``) keeps it.
    """

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _utc(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        context = {
            "request_id": getattr(record, "request_id", None) or _request_id.get(),
            "user_id": getattr(record, "user_id", None) or _user_id.get(),
            "trace_id": getattr(record, "trace_id", None) or current_trace_id(),
        }
        entry.update((key, value) for key, value in context.items() if value is not None)
        if record.name == ACCESS_LOGGER:
            entry.update(_access_fields(record))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def _access_fields(record: logging.LogRecord) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if isinstance(record.args, tuple) and len(record.args) == len(ACCESS_FIELDS):
        fields.update(zip(ACCESS_FIELDS, record.args, strict=True))
    started = _started.get()
    if started is not None:
        # Until the response started (its headers): a stream's body may go on much longer.
        fields["duration_ms"] = round((time.perf_counter() - started) * 1000, 3)
    return fields


def logging_config(log_format: LogFormat, level: str) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for the process: also uvicorn's ``log_config``.

    One handler on stderr, at the root; uvicorn's loggers lose their own handlers and
    propagate to it, so every line has the same format. Passed to uvicorn, it configures
    each worker process of ``serve --workers`` as well.
    """
    formatter: dict[str, Any] = (
        {"()": f"{__name__}.JsonFormatter"} if log_format == "json" else {"format": TEXT_FORMAT}
    )
    plain = {"level": level.upper(), "handlers": [], "propagate": True}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"gateway": formatter},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "gateway",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": level.upper(), "handlers": ["stderr"]},
        "loggers": {
            "uvicorn": plain,
            "uvicorn.error": plain,
            ACCESS_LOGGER: plain,
            "alembic.runtime.plugins": {"level": "WARNING"},
        },
    }


def configure_logging(log_format: LogFormat, level: str) -> None:
    """Set up the process's logging, unless something already did (as ``basicConfig``).

    A test runner capturing logs, or a program embedding the gateway, keeps its handlers.
    Warnings go through logging too, so with JSON every line on stderr is an object.
    """
    if logging.getLogger().handlers:
        return
    logging.config.dictConfig(logging_config(log_format, level))
    logging.captureWarnings(True)
