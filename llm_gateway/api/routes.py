"""The OpenAI-compatible front door: ``POST /v1/chat/completions``, ``GET /v1/models[/{id}]``.

Thin, like the resolvers: authenticate, check the body's shape, call the completion
service, render its result in OpenAI's format. The hold commits before anything is sent
upstream; a streamed answer's headers go out only with its first event, so a failure
before any output is a proper status (502/503/504), not a broken stream.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from llm_gateway.api import wire
from llm_gateway.api.auth import api_caller
from llm_gateway.api.body import parse_completion
from llm_gateway.api.errors import from_gateway, upstream_error
from llm_gateway.api.streaming import EventStream
from llm_gateway.errors import GatewayError, ValidationFailed
from llm_gateway.services.catalog import listing
from llm_gateway.services.chat.completions.planning import (
    ApiCaller,
    CompletionRequest,
    allowed_model,
)
from llm_gateway.services.chat.completions.records import Result
from llm_gateway.services.chat.completions.running import CompletionRun
from llm_gateway.services.chat.completions.starting import Idempotency, Started, start_completion
from llm_gateway.services.container import Services

IDEMPOTENCY_HEADER = "idempotency-key"
MAX_IDEMPOTENCY_KEY = 128


def _json(data: dict[str, Any], status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


async def _body(request: Request) -> object:
    raw = await request.body()
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ValidationFailed("The request body is not valid JSON.", field="body") from None


def _idempotency(request: Request, body: object) -> Idempotency | None:
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        return None
    if not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY or not key.isprintable():
        raise ValidationFailed(
            f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} printable characters.",
            field="Idempotency-Key",
        )
    digest = hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return Idempotency(key, digest)


async def chat_completions(request: Request) -> Response:
    accepted = time.monotonic()  # the gateway's overhead runs from here to the provider call
    services: Services = request.app.state.services
    try:
        services.intake.ensure_open()
        caller = await api_caller(request, services)
        body = await _body(request)
        parsed = parse_completion(body, max_content=services.limits.max_content_length)
        idempotency = _idempotency(request, body)
        await services.rate_limiter.hit(caller.user_id)
        started = await _start(services, caller, parsed, idempotency, body)
    except GatewayError as exc:
        return from_gateway(exc).response()
    if started.replay is not None:
        return _replay(Result.from_json(started.replay), parsed)
    if started.refusal is not None:
        services.metrics.hold_refused(started.refusal.code)
        return from_gateway(started.refusal).response()
    assert started.job is not None
    assert started.plan is not None
    run = CompletionRun(
        services.db,
        services.generations,
        services.broker,
        started.job,
        keep_response=services.settings.api_log_content,
        accepted=accepted,
    )
    if not parsed.stream:
        try:
            result = await run.outcome()
        except asyncio.CancelledError:
            await run.stop("shutdown")
            raise
        return _finished(result)
    items = run.events()
    try:
        first = await anext(items)
    except asyncio.CancelledError:
        await run.stop("shutdown")
        raise
    if isinstance(first, Result) and not first.ok:
        return upstream_error(first.error_code, first.error_message).response()
    writer = wire.ChunkWriter(
        f"chatcmpl-{started.job.message_id.hex}",
        run.created,
        started.plan.model.name,
        include_usage=parsed.include_usage,
    )
    return EventStream(wire.stream_events(writer, _chain(first, items)), run, writer.end)


async def _chain(first: Any, rest: Any) -> Any:
    yield first
    async for item in rest:
        yield item


async def _start(
    services: Services,
    caller: ApiCaller,
    parsed: CompletionRequest,
    idempotency: Idempotency | None,
    body: object,
) -> Started:
    async with services.db.transaction() as session:
        return await start_completion(
            session,
            caller,
            parsed,
            idempotency=idempotency,
            policy=services.policy,
            instance_id=services.instance_id,
            body=body if services.settings.api_log_content and isinstance(body, dict) else None,
        )


def _finished(result: Result) -> Response:
    if not result.ok:
        return upstream_error(result.error_code, result.error_message).response()
    return _json(wire.completion(result))


def _replay(result: Result, parsed: CompletionRequest) -> Response:
    if not parsed.stream or not result.ok:
        return _finished(result)
    writer = wire.ChunkWriter(
        result.request_id, result.created, result.model, include_usage=parsed.include_usage
    )
    return EventStream(wire.stream_events(writer, wire.replayed(result)), None)


def _model(row: Any) -> dict[str, Any]:
    return {
        "id": row.name,
        "object": "model",
        "created": int(row.created_at.timestamp()),
        "owned_by": row.provider,
    }


async def list_models(request: Request) -> Response:
    services: Services = request.app.state.services
    try:
        caller = await api_caller(request, services)
    except GatewayError as exc:
        return from_gateway(exc).response()
    async with services.db.read() as session:
        rows = await listing.list_models(session, include_disabled=False)
    allowed = [row for row in rows if caller.models is None or row.name in caller.models]
    return _json({"object": "list", "data": [_model(row) for row in allowed]})


async def get_model(request: Request) -> Response:
    services: Services = request.app.state.services
    try:
        caller = await api_caller(request, services)
        async with services.db.read() as session:
            row = await allowed_model(session, caller, request.path_params["model"])
    except GatewayError as exc:
        return from_gateway(exc).response()
    return _json(_model(row))


routes = [
    Route("/v1/chat/completions", chat_completions, methods=["POST"]),
    Route("/v1/models", list_models, methods=["GET"]),
    Route("/v1/models/{model:path}", get_model, methods=["GET"]),
]
