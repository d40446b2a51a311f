"""``llm-gateway`` with candidate optimisations patched in at start-up, to measure them first.

    BENCH_VARIANTS=documents,coalesce,no_pre_ping .venv/bin/python -m benchmarks.gateway_variants \
        serve --port 8001

Each variant is what a change to ``llm_gateway`` would do, applied by monkeypatching so the
benchmark can show before and after numbers before anyone edits the code
(``gateway_overhead --variant``). Nothing here is for production.

- ``documents``: parse and validate each distinct GraphQL document once (an LRU cache of
  both), with the depth and alias limits built once so their rule classes are stable
  (``QueryDepthLimiter`` makes a new rule class per instance, which defeats any cache).
- ``coalesce``: publish an answer's deltas at most every ``BENCH_COALESCE_MS`` (default
  50) ms: the first at once, later ones merged (their texts joined, the last ``seq``).
  Any other event of the answer first flushes what is pending, so order holds.
- ``no_pre_ping``: the PostgreSQL pool without ``pool_pre_ping`` (which costs BEGIN, an
  empty statement and ROLLBACK on every checkout).
- ``raw_openai``: the OpenAI adapter reads the event stream itself (``with_streaming_response``
  and ``json.loads`` per ``data:`` line) instead of letting the SDK build a pydantic model
  per chunk; errors inside the stream still become ``openai.APIError``.
- ``gc``: everything allocated at import time is moved out of the collector's reach
  (``gc.freeze()``) and the young generation collects every 50,000 allocations instead of
  700, so full collections over a large heap are rarer.
- ``tracemalloc``: a diagnostic, not a change: the first SIGUSR1 starts tracing
  allocations (10 frames); each SIGUSR1 writes a snapshot to ``BENCH_TRACEMALLOC_DIR``
  (default: the working directory).
"""

from __future__ import annotations

import asyncio
import functools
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from graphql import DocumentNode, GraphQLError, GraphQLSchema, ValidationRule
from graphql.language import parse
from strawberry.extensions import AddValidationRules, MaxAliasesLimiter, QueryDepthLimiter
from strawberry.extensions.base_extension import SchemaExtension
from strawberry.schema.schema import validate_document

VARIANTS = frozenset(v for v in os.environ.get("BENCH_VARIANTS", "").split(",") if v)
KNOWN = frozenset({"documents", "coalesce", "no_pre_ping", "raw_openai", "gc", "tracemalloc"})
CACHE_SIZE = 256


# -- documents ---------------------------------------------------------------------------------


@functools.lru_cache(maxsize=CACHE_SIZE)
def _parse(query: str, max_tokens: int | None) -> DocumentNode:
    return parse(query, max_tokens=max_tokens)


@functools.lru_cache(maxsize=CACHE_SIZE)
def _validate(
    schema: GraphQLSchema, query: str, rules: tuple[type[ValidationRule], ...]
) -> list[GraphQLError]:
    # Keyed by the query text (hashing a DocumentNode walks the whole tree).
    return validate_document(schema, _parse(query, None), rules)


class CachedDocuments(SchemaExtension):
    def on_parse(self) -> Any:
        context = self.execution_context
        if context.query is not None:
            context.graphql_document = _parse(
                context.query, context.parse_options.get("max_tokens")
            )
        yield

    def on_validate(self) -> Any:
        context = self.execution_context
        if context.query is not None:
            context.pre_execution_errors = _validate(
                context.schema._schema, context.query, context.validation_rules
            )
        yield


def _patch_documents() -> None:
    from llm_gateway import app
    from llm_gateway.settings import Settings

    original = vars(app)["build_schema"]

    def build_schema(settings: Settings) -> Any:
        schema = original(settings)
        stable = [
            *QueryDepthLimiter(max_depth=settings.graphql_max_depth).validation_rules,
            *MaxAliasesLimiter(max_alias_count=settings.graphql_max_aliases).validation_rules,
        ]
        limiters = (QueryDepthLimiter, MaxAliasesLimiter)
        kept = [ext for ext in schema.extensions if not isinstance(ext(), limiters)]
        schema.extensions = (lambda: AddValidationRules(stable), *kept, CachedDocuments)
        return schema

    vars(app)["build_schema"] = build_schema


# -- coalesce --------------------------------------------------------------------------------


def _patch_coalesce() -> None:
    from llm_gateway.services import generation

    interval = float(os.environ.get("BENCH_COALESCE_MS", "50")) / 1000
    original = generation.GenerationManager._publish

    class Pending:
        def __init__(self) -> None:
            self.lock = asyncio.Lock()
            self.texts: list[str] = []
            self.seq = 0
            self.last = 0.0
            self.timer: asyncio.TimerHandle | None = None

    pending: dict[Any, Pending] = {}

    async def flush(manager: Any, running: Any, state: Pending) -> None:
        if state.timer is not None:
            state.timer.cancel()
            state.timer = None
        if state.texts:
            event = {"type": "delta", "seq": state.seq, "text": "".join(state.texts)}
            state.texts.clear()
            state.last = time.monotonic()
            await original(manager, running, event)

    async def publish(manager: Any, running: Any, event: dict[str, Any]) -> None:
        key = running.job.message_id
        state = pending.setdefault(key, Pending())
        async with state.lock:
            if event.get("type") != "delta":
                await flush(manager, running, state)
                await original(manager, running, event)
                if event.get("type") in ("completed", "failed"):
                    pending.pop(key, None)
                return
            state.texts.append(event["text"])
            state.seq = event["seq"]
            wait = state.last + interval - time.monotonic()
            if wait <= 0:
                await flush(manager, running, state)
            elif state.timer is None:

                def later() -> None:
                    async def run() -> None:
                        async with state.lock:
                            state.timer = None
                            await flush(manager, running, state)

                    asyncio.get_running_loop().create_task(run())

                state.timer = asyncio.get_running_loop().call_later(wait, later)

    generation.GenerationManager._publish = publish  # type: ignore[method-assign,assignment]


# -- no_pre_ping -------------------------------------------------------------------------------


def _patch_no_pre_ping() -> None:
    from sqlalchemy.engine import URL, make_url
    from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

    from llm_gateway import app

    original: Callable[..., AsyncEngine] = vars(app)["make_engine"]

    def make_engine(url: URL | str, *, pool_size: int = 10, max_overflow: int = 10) -> AsyncEngine:
        if make_url(url).get_backend_name() == "sqlite":
            return original(url, pool_size=pool_size, max_overflow=max_overflow)
        return create_async_engine(url, pool_size=pool_size, max_overflow=max_overflow)

    vars(app)["make_engine"] = make_engine


def _patch_raw_openai() -> None:
    import json
    from collections.abc import AsyncGenerator

    import openai

    from llm_gateway.providers import openai as adapter
    from llm_gateway.providers.base import ErrorKind, ProviderRequest, StreamEvent, TextDelta, Usage
    from llm_gateway.providers.errors import upstream_error

    async def _events(
        self: adapter.OpenAIProvider, request: ProviderRequest
    ) -> AsyncGenerator[StreamEvent, None]:
        client = self._client
        if client.is_closed():
            raise upstream_error(adapter.LABEL, ErrorKind.UNAVAILABLE, "the provider was shut down")
        usage: Usage | None = None
        finished = False
        async with client.chat.completions.with_streaming_response.create(
            model=request.model,
            messages=[adapter._message(m) for m in request.messages],
            max_tokens=request.max_tokens,
            temperature=openai.omit if request.temperature is None else request.temperature,
            top_p=openai.omit if request.top_p is None else request.top_p,
            stop=request.stop or openai.omit,
            user=request.user or openai.omit,
            stream=True,
            stream_options={"include_usage": True},
        ) as response:
            async for line in response.iter_lines():
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    break
                chunk = json.loads(data)
                error = chunk.get("error")
                if error:
                    message = error.get("message") or "error in the stream"
                    raise openai.APIError(message, response.http_request, body=error)
                if chunk.get("usage"):
                    reported = chunk["usage"]
                    usage = Usage(reported["prompt_tokens"], reported["completion_tokens"])
                for choice in chunk.get("choices") or ():
                    if choice.get("index") != 0:
                        continue
                    content = (choice.get("delta") or {}).get("content")
                    if content:
                        yield TextDelta(content)
                    if choice.get("finish_reason") is not None:
                        finished = True
        if not finished:
            raise upstream_error(
                adapter.LABEL, ErrorKind.UNAVAILABLE, "the stream ended without finishing"
            )
        if usage is not None:
            yield usage

    adapter.OpenAIProvider._events = _events  # type: ignore[method-assign]


def _start_tracemalloc() -> None:
    import itertools
    import signal
    import tracemalloc
    from pathlib import Path

    folder = Path(os.environ.get("BENCH_TRACEMALLOC_DIR", "."))
    counter = itertools.count(1)

    def dump(_signal: int, _frame: Any) -> None:
        if not tracemalloc.is_tracing():
            tracemalloc.start(10)  # the first signal starts tracing: start-up stays fast
        tracemalloc.take_snapshot().dump(str(folder / f"snapshot-{next(counter)}.pickle"))

    signal.signal(signal.SIGUSR1, dump)


def main() -> int:
    unknown = VARIANTS - KNOWN
    if unknown:
        print(f"unknown variants: {sorted(unknown)}", file=sys.stderr)
        return 2
    if "documents" in VARIANTS:
        _patch_documents()
    if "coalesce" in VARIANTS:
        _patch_coalesce()
    if "no_pre_ping" in VARIANTS:
        _patch_no_pre_ping()
    if "raw_openai" in VARIANTS:
        _patch_raw_openai()
    if "tracemalloc" in VARIANTS:
        _start_tracemalloc()
    from llm_gateway.cli import main as cli_main

    if "gc" in VARIANTS:
        import gc

        import llm_gateway.app  # noqa: F401  (import the application before freezing)

        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 20, 20)
    return cli_main(sys.argv[1:])


if __name__ == "__main__":
    raise SystemExit(main())
