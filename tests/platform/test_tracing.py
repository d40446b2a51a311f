"""Traces: ``llm-gateway serve`` with ``OTEL_EXPORTER_OTLP_ENDPOINT`` sends its spans to an
OTLP/HTTP receiver this test runs on loopback, which decodes them (protobuf)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as SpanMessage
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from llm_gateway.observability.tracing import graphql_arguments, setup_tracing
from tests.faults import RedisServer, free_port, redis_server, until
from tests.live import serve_asgi
from tests.platform.test_cli import EXECUTABLE, clean_env
from tests.support import TEST_SECRET, token

CONTENT = "Hello tracing"
GEN_AI = (
    "gen_ai.request.model",
    "gen_ai.provider.name",
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens",
    "gen_ai.response.finish_reasons",
    "gen_ai.conversation.id",
)
SEND = (
    "mutation Send($input: SendMessageInput!) {"
    " sendMessage(input: $input) { assistantMessage { id } } }"
)


@dataclass(frozen=True, slots=True)
class Span:
    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_id: str
    attributes: dict[str, Any]


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    return getattr(value, kind) if kind is not None else None


def _span(message: SpanMessage) -> Span:
    return Span(
        name=message.name,
        kind=message.kind,
        trace_id=message.trace_id.hex(),
        span_id=message.span_id.hex(),
        parent_id=message.parent_span_id.hex(),
        attributes={a.key: _value(a.value) for a in message.attributes},
    )


@pytest.fixture
async def redis(tmp_path: Path) -> AsyncIterator[RedisServer]:
    async with redis_server(tmp_path / "redis") as server:
        yield server


@pytest.fixture
async def collector() -> AsyncIterator[tuple[str, list[Span]]]:
    """An OTLP/HTTP receiver: ``POST /v1/traces``, protobuf in, every span kept."""
    spans: list[Span] = []

    async def traces(request: Request) -> Response:
        export = ExportTraceServiceRequest()
        export.ParseFromString(await request.body())
        for resource in export.resource_spans:
            for scope in resource.scope_spans:
                spans.extend(_span(s) for s in scope.spans)
        body = ExportTraceServiceResponse().SerializeToString()
        return Response(body, media_type="application/x-protobuf")

    app = Starlette(routes=[Route("/v1/traces", traces, methods=["POST"])])
    async with serve_asgi(app) as server:
        yield server.base_url, spans


def _generation(spans: list[Span], **attributes: Any) -> Span | None:
    for span in spans:
        if span.attributes.get("gen_ai.operation.name") == "chat" and all(
            span.attributes.get(k) == v for k, v in attributes.items()
        ):
            return span
    return None


def _system(span: Span) -> Any:
    return span.attributes.get("db.system.name", span.attributes.get("db.system"))


def _ancestors(span: Span, spans: list[Span]) -> list[str]:
    by_id = {s.span_id: s for s in spans}
    chain: list[str] = []
    while span.parent_id and span.parent_id in by_id:
        span = by_id[span.parent_id]
        chain.append(span.span_id)
    return chain


async def test_requests_generations_sql_and_redis_are_traced_without_content(
    collector: tuple[str, list[Span]], redis: RedisServer, tmp_path: Path
) -> None:
    endpoint, spans = collector
    port = free_port()
    env = clean_env(
        DJANGO_SECRET_KEY=TEST_SECRET,
        DEBUG="false",
        LOG_FORMAT="json",
        LOG_LEVEL="INFO",
        REDIS_URL=redis.url,
        OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
        OTEL_BSP_SCHEDULE_DELAY="100",
        OTEL_SERVICE_NAME="gateway-under-test",
    )
    stderr = tmp_path / "stderr.log"
    with stderr.open("wb") as sink:
        process = await asyncio.create_subprocess_exec(
            str(EXECUTABLE),
            "serve",
            "--migrate",
            "--port",
            str(port),
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=sink,
        )
    auth = {"Authorization": f"Bearer {token(31)}"}
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:

            async def healthy() -> bool:
                assert process.returncode is None, stderr.read_text()
                try:
                    return (await client.get("/healthz")).status_code == 200
                except httpx.TransportError:
                    return False

            await until(healthy, within=60, what="the gateway started")
            created = await client.post(
                "/graphql",
                json={"query": 'mutation { createDialog(input: {model: "mock"}) { id } }'},
                headers=auth,
            )
            dialog_id = created.json()["data"]["createDialog"]["id"]
            sent = await client.post(
                "/graphql",
                json={
                    "query": SEND,
                    "operationName": "Send",
                    "variables": {"input": {"dialogId": dialog_id, "content": CONTENT}},
                },
                headers={**auth, "X-Request-ID": "req-send"},
            )
            assert "errors" not in sent.json(), sent.text
            completion = await client.post(
                "/v1/chat/completions",
                json={"model": "mock", "messages": [{"role": "user", "content": CONTENT}]},
                headers=auth,
            )
            assert completion.status_code == 200, completion.text

            async def exported() -> bool:
                chat = _generation(spans, **{"gen_ai.conversation.id": dialog_id})
                api = [s for s in spans if s.attributes.get("gen_ai.operation.name") == "chat"]
                return chat is not None and len(api) >= 2

            await until(exported, within=30, what="the generations' spans arrived")
    finally:
        if process.returncode is None:
            process.terminate()
        await asyncio.wait_for(process.wait(), 30)

    (operation,) = [s for s in spans if s.name == "GraphQL Query: Send"]
    assert operation.kind == SpanMessage.SPAN_KIND_SERVER
    chat = _generation(spans, **{"gen_ai.conversation.id": dialog_id})
    assert chat is not None
    assert chat.name == "chat mock"
    assert set(GEN_AI) <= chat.attributes.keys(), chat.attributes
    assert chat.attributes["gen_ai.request.model"] == "mock"
    assert chat.attributes["gen_ai.provider.name"] == "mock"
    assert chat.attributes["gen_ai.usage.input_tokens"] > 0
    assert chat.attributes["gen_ai.usage.output_tokens"] > 0
    assert chat.attributes["gen_ai.response.finish_reasons"] == ["stop"]
    # The generation belongs to the sendMessage's trace, under its operation span.
    assert chat.trace_id == operation.trace_id
    assert operation.span_id in _ancestors(chat, spans)
    # SQL, the settlement's too, inside the generation.
    sql = [s for s in spans if _system(s) == "sqlite"]
    assert any(s.parent_id == chat.span_id for s in sql), [s.name for s in sql]
    assert any(_system(s) == "redis" for s in spans)  # the broker's commands
    # /v1: the request's server span and its generation share a trace.
    (api,) = [
        s for s in spans if s.attributes.get("gen_ai.operation.name") == "chat" and s is not chat
    ]
    assert "gen_ai.conversation.id" not in api.attributes
    assert api.attributes["gen_ai.usage.output_tokens"] > 0
    (route,) = [
        s for s in spans if s.kind == SpanMessage.SPAN_KIND_SERVER and s.trace_id == api.trace_id
    ]
    assert "/v1/chat/completions" in json.dumps(route.attributes)
    assert route.span_id in _ancestors(api, spans)
    # No message content anywhere: not in names, not in any attribute.
    for span in spans:
        assert CONTENT not in span.name
        assert CONTENT not in json.dumps(span.attributes, default=str), span
    # The JSON logs name the trace: the access line of the sendMessage request.
    lines = [json.loads(line) for line in stderr.read_text().splitlines() if line.startswith("{")]
    (access,) = [
        e for e in lines if e["logger"] == "uvicorn.access" and e.get("request_id") == "req-send"
    ]
    assert access["trace_id"] == operation.trace_id


def test_without_the_endpoint_nothing_of_the_sdk_is_built_or_imported(tmp_path: Path) -> None:
    assert setup_tracing(None) is None
    assert setup_tracing("") is None
    script = (
        "import sys\n"
        "from llm_gateway.app import create_app\n"
        "from llm_gateway.settings import Settings\n"
        f"create_app(Settings(_env_file=None, jwt_secret={TEST_SECRET!r}))\n"
        "loaded = [m for m in sys.modules if m.startswith(("
        "'opentelemetry.sdk.trace', 'opentelemetry.exporter', 'opentelemetry.instrumentation',"
        " 'strawberry.extensions.tracing'))]\n"
        "print(loaded)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=clean_env(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.strip() == "[]", done.stderr


def test_graphql_arguments_keep_only_ids_and_names() -> None:
    arguments = {
        "input": {"dialogId": "d-1", "content": CONTENT, "systemPrompt": "secret prompt"},
        "value": "sk-secret",
        "key": "OPENAI_API_KEY",
        "first": 10,
        "id": "m-1",
    }
    assert graphql_arguments(arguments, None) == {
        "input": {"dialogId": "d-1"},
        "first": 10,
        "id": "m-1",
    }
