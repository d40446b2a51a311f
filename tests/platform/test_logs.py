"""Logs: the JSON formatter, and every front door naming the request and the caller.

The in-process tests put uvicorn's access line where uvicorn puts it (logged from the
app's ``send`` as the response starts, in the request's context), so what they check is
what ``LOG_FORMAT=json`` prints under ``serve`` (``test_logs_served.py`` checks that too).
"""

from __future__ import annotations

import contextvars
import io
import json
import logging
import logging.config
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import text
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from llm_gateway.app import create_app
from llm_gateway.observability.logs import (
    TEXT_FORMAT,
    JsonFormatter,
    bind_request,
    bind_user,
    current_trace_id,
    logging_config,
)
from llm_gateway.services.money import api_keys
from llm_gateway.settings import ConfigError, Settings, load_settings
from tests.admin_support import AdminClient
from tests.conftest import STAFF_LOGIN, admin_settings
from tests.factories import database_of
from tests.fakes.omnimap_back import OmnimapBack
from tests.live import graphql_socket, live_server
from tests.support import token

ACCESS = logging.getLogger("uvicorn.access")


def record(
    message: str = "hello %s",
    *args: object,
    name: str = "llm_gateway.test",
    level: int = logging.INFO,
    exc_info: Any = None,
) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, message, args or None, exc_info)


def formatted(make: Callable[[], logging.LogRecord]) -> dict[str, Any]:
    """Format in a context of its own, so the ids bound here never leak into other tests."""

    def run() -> dict[str, Any]:
        line = JsonFormatter().format(make())
        assert "\n" not in line
        entry: dict[str, Any] = json.loads(line)
        return entry

    return contextvars.copy_context().run(run)


# --- the formatter ---------------------------------------------------------------------------


def test_a_line_outside_any_request_has_the_base_fields_only() -> None:
    entry = formatted(lambda: record("hello %s", "world"))
    assert set(entry) == {"time", "level", "logger", "message"}
    assert (entry["level"], entry["logger"], entry["message"]) == (
        "INFO",
        "llm_gateway.test",
        "hello world",
    )
    assert entry["time"].endswith("Z")  # UTC, ISO 8601 with milliseconds
    assert len(entry["time"]) == len("2026-01-02T03:04:05.678Z")


def test_a_line_inside_a_request_names_it_and_the_caller() -> None:
    def make() -> logging.LogRecord:
        bind_request("req-1")
        bind_user(42)
        return record("multi\nline message")

    entry = formatted(make)
    assert entry["request_id"] == "req-1"
    assert entry["user_id"] == 42
    assert entry["message"] == "multi\nline message"  # escaped, so still one line


def test_a_new_request_forgets_the_previous_caller() -> None:
    def make() -> logging.LogRecord:
        bind_request("req-1")
        bind_user(42)
        bind_request("req-2")
        return record()

    entry = formatted(make)
    assert entry["request_id"] == "req-2"
    assert "user_id" not in entry


def test_an_exception_is_formatted_into_the_line() -> None:
    def make() -> logging.LogRecord:
        try:
            raise ValueError("boom")
        except ValueError:
            import sys

            return record("it failed", level=logging.ERROR, exc_info=sys.exc_info())

    entry = formatted(make)
    assert entry["level"] == "ERROR"
    assert entry["exception"].startswith("Traceback (most recent call last):")
    assert "ValueError: boom" in entry["exception"]


def test_a_request_id_given_by_the_caller_of_the_logger_wins() -> None:
    def make() -> logging.LogRecord:
        bind_request("req-context")
        line = record()
        line.request_id = "req-extra"
        return line

    assert formatted(make)["request_id"] == "req-extra"


def test_the_access_line_is_split_into_fields() -> None:
    def make() -> logging.LogRecord:
        bind_request("req-a")
        return record(
            '%s - "%s %s HTTP/%s" %d',
            "10.0.0.1:5000",
            "POST",
            "/graphql?x=1",
            "1.1",
            200,
            name="uvicorn.access",
        )

    entry = formatted(make)
    assert entry["message"] == '10.0.0.1:5000 - "POST /graphql?x=1 HTTP/1.1" 200'
    assert (entry["method"], entry["path"], entry["status"]) == ("POST", "/graphql?x=1", 200)
    assert (entry["client"], entry["http_version"]) == ("10.0.0.1:5000", "1.1")
    assert entry["request_id"] == "req-a"
    assert 0 <= entry["duration_ms"] < 60_000


def test_the_trace_id_is_the_active_spans() -> None:
    trace = pytest.importorskip("opentelemetry.trace")
    assert current_trace_id() is None  # no span: no key at all
    assert "trace_id" not in formatted(record)
    span = trace.NonRecordingSpan(
        trace.SpanContext(
            trace_id=0x0AF7651916CD43DD8448EB211C80319C,
            span_id=0x00F067AA0BA902B7,
            is_remote=False,
            trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED),
        )
    )
    with trace.use_span(span):
        assert current_trace_id() == "0af7651916cd43dd8448eb211c80319c"
        assert formatted(record)["trace_id"] == "0af7651916cd43dd8448eb211c80319c"


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_the_config_gives_uvicorns_loggers_the_same_format(log_format: Any) -> None:
    config = logging_config(log_format, "info")
    stream = io.StringIO()
    config["handlers"]["stderr"]["stream"] = stream
    root = logging.getLogger()
    saved = (root.level, root.handlers[:])
    names = ("uvicorn", "uvicorn.error", "uvicorn.access", "alembic.runtime.plugins")
    loggers = {name: logging.getLogger(name) for name in names}
    saved_loggers = {
        name: (log.level, log.handlers[:], log.propagate, log.disabled)
        for name, log in loggers.items()
    }
    try:
        logging.config.dictConfig(config)
        logging.getLogger("uvicorn.error").info("Started server process [%d]", 1)
        logging.getLogger("llm_gateway.test").warning("careful")
    finally:
        root.setLevel(saved[0])
        root.handlers[:] = saved[1]
        for name, (level, handlers, propagate, disabled) in saved_loggers.items():
            log = loggers[name]
            log.setLevel(level)
            log.handlers[:] = handlers
            log.propagate, log.disabled = propagate, disabled
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    if log_format == "json":
        assert [json.loads(line)["logger"] for line in lines] == [
            "uvicorn.error",
            "llm_gateway.test",
        ]
    else:
        assert TEXT_FORMAT.endswith("%(name)s: %(message)s")
        assert lines[0].endswith(" INFO uvicorn.error: Started server process [1]")
        assert lines[1].endswith(" WARNING llm_gateway.test: careful")


def test_log_format_is_text_or_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOG_FORMAT", raising=False)
    assert load_settings(_env_file=None).log_format == "text"
    assert load_settings(_env_file=None, log_format=" JSON ").log_format == "json"
    with pytest.raises(ConfigError, match="LOG_FORMAT"):
        load_settings(_env_file=None, log_format="yaml")


# --- every front door binds the request and the caller ---------------------------------------


class Lines(logging.Handler):
    """Formats each record as it is logged (in the logging code's context), keeps it."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    def access(self) -> list[dict[str, Any]]:
        entries = [json.loads(line) for line in self.lines]
        return [entry for entry in entries if entry["logger"] == "uvicorn.access"]


@pytest.fixture
def lines(caplog: pytest.LogCaptureFixture) -> Iterator[Lines]:
    """Every line logged during the test, as JSON. Any uvicorn started in this process
    (the fakes, ``live_server``) silenced its access logger: here it speaks again."""
    caplog.set_level(logging.INFO)
    saved = (ACCESS.level, ACCESS.propagate)
    ACCESS.setLevel(logging.INFO)
    ACCESS.propagate = True
    handler = Lines()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        ACCESS.setLevel(saved[0])
        ACCESS.propagate = saved[1]


def with_access_log(app: ASGIApp) -> ASGIApp:
    """``app`` with uvicorn's access line, logged where uvicorn logs it."""

    async def logged(scope: Scope, receive: Receive, send: Send) -> None:
        async def send_and_log(message: Message) -> None:
            if message["type"] == "http.response.start":
                ACCESS.info(
                    '%s - "%s %s HTTP/%s" %d',
                    "127.0.0.1:40000",
                    scope["method"],
                    scope["path"],
                    scope.get("http_version", "1.1"),
                    message["status"],
                )
            await send(message)

        await app(scope, receive, send_and_log)

    return logged


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=with_access_log(app))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as http:
        yield http


async def test_graphql_lines_name_the_request_and_the_caller(
    client: httpx.AsyncClient, lines: Lines
) -> None:
    response = await client.post(
        "/graphql",
        json={"query": "{ me { userId } }"},
        headers={"Authorization": f"Bearer {token(7)}", "X-Request-ID": "req-graphql"},
    )
    assert response.json() == {"data": {"me": {"userId": 7}}}
    anonymous = await client.post("/graphql", json={"query": "{ __typename }"})
    assert anonymous.status_code == 200

    first, second = lines.access()
    assert (first["request_id"], first["user_id"]) == ("req-graphql", 7)
    assert (first["method"], first["path"], first["status"]) == ("POST", "/graphql", 200)
    # The same task served both (an ASGI client): the second names no one.
    assert second["request_id"] == anonymous.headers["x-request-id"] != "req-graphql"
    assert "user_id" not in second


async def test_v1_lines_name_the_caller_by_token_and_by_api_key(
    app: Any, client: httpx.AsyncClient, lines: Lines
) -> None:
    async with database_of(app).transaction() as session:
        key, _ = await api_keys.create_api_key(session, 8, name="logs")
    by_token = await client.get("/v1/models", headers={"Authorization": f"Bearer {token(5)}"})
    by_key = await client.get("/v1/models", headers={"Authorization": f"Bearer {key}"})
    refused = await client.get("/v1/models")
    assert (by_token.status_code, by_key.status_code, refused.status_code) == (200, 200, 401)
    assert [entry.get("user_id") for entry in lines.access()] == [5, 8, None]


async def test_admin_lines_name_the_signed_in_staff_member(
    database_url: str, omnimap: OmnimapBack, lines: Lines
) -> None:
    admin_app = create_app(admin_settings(database_url, omnimap))
    async with LifespanManager(admin_app):
        transport = httpx.ASGITransport(app=with_access_log(admin_app))
        async with httpx.AsyncClient(transport=transport, base_url="https://gateway.test") as http:
            admin = AdminClient(http)
            assert (await admin.login(*STAFF_LOGIN)).status_code == 303
            lines.lines.clear()
            page = await admin.get("/admin/")
    assert page.status_code == 200
    (entry,) = lines.access()
    assert (entry["path"], entry["user_id"]) == ("/admin/", 900)


async def test_a_websocket_operation_names_the_socket_and_its_caller(
    settings: Settings, lines: Lines
) -> None:
    async with live_server(settings) as server:
        async with database_of(server.app).transaction() as session:  # a bug, in effect
            await session.execute(text("ALTER TABLE dialogs RENAME TO dialogs_gone"))
        payload = {"Authorization": f"Bearer {token(11)}"}
        async with graphql_socket(server, payload) as socket:
            result = await socket.execute("{ dialogs(first: 1) { edges { cursor } } }")
    assert result["errors"][0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    (failure,) = [json.loads(line) for line in lines.lines if "unexpected error" in line]
    assert failure["user_id"] == 11
    assert failure["request_id"]  # the socket's (uvicorn gives its own task per connection)
    assert "dialogs" in failure["exception"]
