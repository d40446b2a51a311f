"""The ASGI application: ``create_app(settings)``.

The lifespan builds the engine, the token verifier and (when configured) the Redis
client, checks that the database is migrated, and tears all of it down at shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.websockets import WebSocket
from strawberry.exceptions import ConnectionRejectionError

from llm_gateway.admin import Backend, build_admin
from llm_gateway.api.routes import routes as api_routes
from llm_gateway.auth import TokenVerifier
from llm_gateway.db.engine import Database, make_engine
from llm_gateway.db.migrate import assert_at_head
from llm_gateway.errors import GatewayError
from llm_gateway.http.body_limit import BodyLimitMiddleware
from llm_gateway.http.graphql_view import HardenedGraphQL
from llm_gateway.http.http_subscriptions import SUBSCRIPTION_PROTOCOLS
from llm_gateway.http.landing import routes as landing_routes
from llm_gateway.http.legacy_rest import routes as rest_routes
from llm_gateway.http.request_id import REQUEST_ID_HEADER, RequestIdMiddleware
from llm_gateway.lifespan import (
    SHUTDOWN_STEP_SECONDS,
    Drain,
    bounded,
    default_instance_id,
    redis_client,
    settled,
)
from llm_gateway.observability.http_spans import traced_transport
from llm_gateway.observability.metrics import GatewayMetrics
from llm_gateway.observability.metrics_server import mark_worker_exited
from llm_gateway.observability.tracing import (
    GenerationSpans,
    asgi_middleware,
    flush_tracing,
    instrument_storage,
    setup_tracing,
)
from llm_gateway.providers.registry import ProviderRegistry, Timeouts
from llm_gateway.schema.build import build_schema
from llm_gateway.schema.context import Context
from llm_gateway.schema.loaders import Loaders
from llm_gateway.services.catalog.credentials import settings_credentials
from llm_gateway.services.chat.generation.recovery import run_sweeper, sweep_once
from llm_gateway.services.chat.generation.runner import GenerationManager
from llm_gateway.services.container import Services
from llm_gateway.services.money.api_keys import ApiKeyAuthenticator
from llm_gateway.services.money.balances import MoneyPolicy
from llm_gateway.services.money.rate_limit import RateLimiter
from llm_gateway.services.plumbing import health
from llm_gateway.services.plumbing.broker import Broker, InProcessBroker, RedisBroker
from llm_gateway.services.staff import runtime_settings as config
from llm_gateway.services.staff.credential_cache import CredentialCache
from llm_gateway.services.staff.runtime_settings import Cipher, Limits
from llm_gateway.settings import Settings


class GraphQLApp(HardenedGraphQL):
    """Strawberry's ASGI view with our context and websocket authentication."""

    async def get_context(self, request: Request | WebSocket, response: Any) -> Context:
        services: Services = request.app.state.services
        return Context(
            request=request,
            response=response,
            services=services,
            loaders=Loaders(services.db),
        )

    async def on_ws_connect(self, context: Context) -> dict[str, Any] | None:
        try:
            principal = context.authenticate_socket(context.connection_params)
        except GatewayError as exc:
            raise ConnectionRejectionError({"code": exc.code, "message": exc.message}) from None
        return {"userId": principal.user_id, "isStaff": principal.is_staff}


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "alive"})


async def readyz(request: Request) -> Response:
    services: Services = request.app.state.services
    if not services.intake.open:  # draining: load balancers stop sending work at once
        return JSONResponse({"status": "draining", "checks": []}, status_code=503)
    checks = await health.readiness(services.db, services.redis)
    ready = all(check.ok for check in checks)
    body = {
        "status": "ready" if ready else "not_ready",
        "checks": [
            {"name": c.name, "ok": c.ok, "latencyMs": c.latency_ms, "error": c.error}
            for c in checks
        ],
    }
    return JSONResponse(body, status_code=200 if ready else 503)


def create_app(settings: Settings) -> Starlette:
    """Build the application; configuration errors surface here, before serving."""
    secret = settings.jwt_secret()
    admin = build_admin(settings)
    tracer_provider = setup_tracing(settings.otel_exporter_otlp_endpoint)  # None: off

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        engine = make_engine(
            settings.database,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pooler=settings.db_pooler,
        )
        metrics = GatewayMetrics()
        metrics.watch_pool(engine)
        db = Database(engine)
        redis = redis_client(settings)
        broker: Broker = RedisBroker(redis) if redis is not None else InProcessBroker()
        traced_storage = contextlib.ExitStack()
        if tracer_provider is not None:
            traced_storage.enter_context(instrument_storage(tracer_provider, engine, redis))
        sweeper: asyncio.Task[None] | None = None
        drain: Drain | None = None
        watcher: asyncio.Task[None] | None = None
        key_tasks: asyncio.Task[None] | None = None
        api_keys = ApiKeyAuthenticator(db, broker, cache_seconds=settings.api_key_cache_seconds)
        cipher = Cipher(settings)

        async def load_overrides() -> dict[str, str]:
            async with db.read() as session:
                return await config.overrides(session, cipher)

        refreshing = asyncio.Lock()

        async def refresh_config() -> None:
            """A setting changed somewhere: drop cached credentials, re-read the limits.

            Serialised, so a refresh that read older rows can never apply after a newer one.
            """
            async with refreshing:
                credentials.invalidate()
                services: Services | None = getattr(app.state, "services", None)
                if services is not None:
                    services.apply_limits(Limits.of(settings, await load_overrides()))

        credentials = CredentialCache(
            settings_credentials(settings), load_overrides, settings.config_cache_seconds
        )
        registry = ProviderRegistry(
            credentials,
            Timeouts(
                connect=settings.provider_connect_timeout, read=settings.provider_idle_timeout
            ),
            traced_transport(tracer_provider) if tracer_provider is not None else None,
        )

        def current_policy() -> MoneyPolicy:
            # The services' policy is the one source of truth (runtime settings update it);
            # until the services exist, the same policy as they start with.
            services: Services | None = getattr(app.state, "services", None)
            return services.policy if services is not None else MoneyPolicy.from_settings(settings)

        spans = GenerationSpans(tracer_provider)
        generations = GenerationManager(
            db, broker, registry, settings, current_policy, metrics, spans
        )
        instance_id = settings.instance_id or default_instance_id()
        backend = Backend(
            settings.backend_auth_url, settings.backend_users_url, settings.backend_timeout_seconds
        )
        try:
            await assert_at_head(engine)
            limits = Limits.of(settings, await load_overrides())
            await generations.start()
            app.state.services = Services(
                settings=settings,
                db=db,
                verifier=TokenVerifier(
                    secret, settings.jwt_algorithms, settings.jwt_leeway_seconds
                ),
                broker=broker,
                policy=replace(
                    MoneyPolicy.from_settings(settings), initial_balance=limits.initial_balance
                ),
                instance_id=instance_id,
                generations=generations,
                cipher=cipher,
                rate_limiter=RateLimiter(
                    limits.rate_limit_requests, limits.rate_limit_window, redis
                ),
                limits=limits,
                refresh_config=refresh_config,
                api_keys=api_keys,
                metrics=metrics,
                redis=redis,
            )
            admin.state.services = app.state.services
            admin.state.backend = backend
            # Holds this instance took before a restart are orphans now.
            await sweep_once(db, broker, metrics, instance_id=instance_id)
            sweeper = asyncio.create_task(
                run_sweeper(db, broker, settings.sweep_interval_seconds, metrics), name="sweeper"
            )
            watcher = asyncio.create_task(
                config.watch(broker, refresh_config), name="config-watcher"
            )
            key_tasks = asyncio.create_task(api_keys.run(), name="api-keys")
            drain = Drain(
                app.state.services.intake, settings.shutdown_grace_seconds, generations.busy
            )
            drain.install()
            yield
        finally:
            # Every step is bounded: shutdown finishes whatever is down (Redis, the
            # database), within the grace period plus a few seconds.
            for task in (watcher, sweeper, key_tasks):
                if task is not None:
                    task.cancel()
                    await bounded(f"stopping {task.get_name()}", settled(task))
            await bounded("recording API keys' last use", api_keys.last_used.flush())
            grace = drain.remaining() if drain is not None else settings.shutdown_grace_seconds
            await bounded(
                "finishing generations",
                generations.shutdown(grace),
                grace + SHUTDOWN_STEP_SECONDS,
            )
            await bounded("closing provider clients", registry.aclose())
            await bounded("closing the omnimap-back client", backend.aclose())
            await bounded("closing the broker", broker.close())
            if redis is not None:
                await bounded("closing Redis", redis.aclose())
            await bounded("closing the database pool", db.dispose())
            mark_worker_exited()  # its live gauges leave the scrape (with METRICS_PORT)
            traced_storage.close()
            if tracer_provider is not None:
                await bounded("sending the last traces", flush_tracing(tracer_provider))

    graphql = GraphQLApp(
        build_schema(settings, tracer_provider),
        graphql_ide="graphiql",
        subscription_protocols=SUBSCRIPTION_PROTOCOLS,
        allow_queries_via_get=False,
    )
    middleware = []
    if settings.cors_origins:  # outermost, so even early errors carry CORS headers
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=settings.cors_origins,
                allow_credentials=True,
                allow_methods=["GET", "POST", "OPTIONS"],
                # Any header: OpenAI's SDKs send their own (x-stainless-*, openai-*).
                allow_headers=["*"],
                expose_headers=[REQUEST_ID_HEADER, "retry-after", "x-should-retry"],
            )
        )
    if tracer_provider is not None:  # a server span per request, inside CORS
        middleware.append(asgi_middleware(tracer_provider))
    middleware.append(Middleware(RequestIdMiddleware))
    middleware.append(  # inside the two above, so a 413 carries CORS headers and the id
        Middleware(
            BodyLimitMiddleware,
            max_body_bytes=settings.max_request_bytes,
            max_message_bytes=settings.max_websocket_message_bytes,
        )
    )
    return Starlette(
        debug=False,
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            *rest_routes,
            *api_routes,
            *landing_routes,
            Mount("/admin", admin),
        ],
        middleware=middleware,
        lifespan=lifespan,
    )
