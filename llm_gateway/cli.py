"""The ``llm-gateway`` command: serve, migrate, token, export-schema."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from llm_gateway.observability import logs
from llm_gateway.observability.metrics_server import prepare_multiprocess_dir, start_metrics_server
from llm_gateway.settings import ConfigError, Settings, load_settings


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    settings.check_runnable()  # before importing the app, migrating or binding anything
    workers = args.workers or settings.web_concurrency
    if workers > 1 and not settings.redis_url:
        raise ConfigError(
            f"{workers} workers need REDIS_URL: workers share live answers, cancels, "
            "revocations and rate limits through Redis"
        )
    # Metrics (METRICS_PORT): before anything imports prometheus_client, workers included.
    prepare_multiprocess_dir(settings)

    import uvicorn

    if args.migrate or settings.is_sqlite:
        # The embedded default creates and migrates its SQLite file on first start (and
        # after an upgrade); PostgreSQL is migrated on purpose, by `migrate` or --migrate.
        _migrate(settings, args)
    else:
        asyncio.run(_check_database(settings))
    host = args.host or settings.host
    port = args.port or settings.port
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": settings.log_level.lower(),
        "proxy_headers": True,
        "ws": "websockets-sansio",
        # permessage-deflate would compress every frame of every subscription (answers
        # arrive a few tokens per frame, which barely shrink) and keep a compressor and a
        # decompressor alive per socket, idle or not.
        "ws_per_message_deflate": False,
        "ws_max_size": settings.max_websocket_message_bytes,  # closes with 1009 past it
        # Open /v1 streams still running once the drain is over get this long, then end
        # as interrupted (and are settled).
        "timeout_graceful_shutdown": math.ceil(settings.shutdown_grace_seconds),
        # uvicorn's loggers in the gateway's format (LOG_FORMAT), in every worker too.
        "log_config": logs.logging_config(settings.log_format, settings.log_level),
    }
    print(
        f"LLM Gateway on http://{host}:{port}/graphql (GraphiQL in a browser)"
        + (f", {workers} workers" if workers > 1 else ""),
        flush=True,
    )
    start_metrics_server(settings)  # every worker's metrics, added up, on METRICS_PORT
    if workers == 1:
        from llm_gateway.app import create_app

        app = create_app(settings)
        _settle_heap()
        uvicorn.run(app, **options)
    else:
        # Each worker is a process of its own, on the same socket, built by ``worker_app``.
        uvicorn.run("llm_gateway.cli:worker_app", factory=True, workers=workers, **options)
    return 0


def worker_app() -> Any:
    """One worker's application under ``serve --workers N``: the settings are read from the
    environment (and ``.env``) exactly as the parent read them."""
    from llm_gateway.app import create_app

    settings = load_settings()
    configure_logging(settings)
    app = create_app(settings)
    _settle_heap()
    return app


def _settle_heap() -> None:
    """Take what start-up allocated out of the garbage collector's reach, collect less often.

    The modules, the schema and the app live as long as the process, yet every full
    collection walked them all again: ``gc.freeze()`` moves them to a permanent generation.
    The young generation is then collected every 50,000 net allocations instead of 700: a
    streamed token allocates many containers, and reference counting frees nearly all.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


async def _check_database(settings: Settings) -> None:
    from llm_gateway.db.engine import make_engine
    from llm_gateway.db.migrate import assert_at_head

    engine = make_engine(settings.database, pooler=settings.db_pooler)
    try:
        await assert_at_head(engine)
    finally:
        await engine.dispose()


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    from llm_gateway.db import migrate

    if settings.is_sqlite:
        Path(settings.database.database or "").parent.mkdir(parents=True, exist_ok=True)
    migrate.upgrade(
        settings.database, getattr(args, "revision", "head") or "head", pooler=settings.db_pooler
    )
    print(f"database at {migrate.head_revision()}: {settings.database.render_as_string()}")
    return 0


def _token(settings: Settings, args: argparse.Namespace) -> int:
    from llm_gateway.auth import mint_access_token

    if not settings.debug and not args.allow_production:
        print(
            "refusing to mint a token with DEBUG off: tokens come from omnimap-back in "
            "production (pass --allow-production if you really mean it)",
            file=sys.stderr,
        )
        return 2
    token = mint_access_token(
        settings.jwt_secret(),
        args.user_id,
        is_staff=args.staff,
        lifetime_seconds=args.hours * 3600,
        algorithm=settings.jwt_algorithms[0],
    )
    print(token)
    return 0


def _export_schema(settings: Settings, args: argparse.Namespace) -> int:
    from llm_gateway.schema.build import schema

    text = schema.as_str() + "\n"
    if args.output == "-":
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text, encoding="utf-8")
    return 0


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {value}")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llm-gateway", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the server (uvicorn)")
    serve.add_argument("--host", help="bind address (default: HOST, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default: PORT, 8001)")
    serve.add_argument("--migrate", action="store_true", help="apply migrations first")
    serve.add_argument(
        "--workers",
        type=_positive_int,
        help="worker processes on the port (default: WEB_CONCURRENCY, 1); more need REDIS_URL",
    )
    serve.set_defaults(handler=_serve)

    migrate = commands.add_parser("migrate", help="apply database migrations")
    migrate.add_argument("--revision", default="head")
    migrate.set_defaults(handler=_migrate)

    token = commands.add_parser("token", help="mint a development access token")
    token.add_argument(
        "--user-id", type=_positive_int, default=1, help="omnimap user id (default 1)"
    )
    token.add_argument("--staff", action="store_true", help="set is_staff")
    token.add_argument(
        "--hours", type=_positive_int, default=24, help="lifetime in hours (default 24)"
    )
    token.add_argument("--allow-production", action="store_true", help="mint even with DEBUG off")
    token.set_defaults(handler=_token)

    export = commands.add_parser("export-schema", help="write the GraphQL SDL")
    export.add_argument("--output", default="schema.graphql", help="file, or - for stdout")
    export.set_defaults(handler=_export_schema)
    return parser


def configure_logging(settings: Settings) -> None:
    """The process's logging (the command's, and each worker's under ``--workers``)."""
    logs.configure_logging(settings.log_format, settings.log_level)  # text or JSON
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
        configure_logging(settings)
        code: int = args.handler(settings, args)
    except ConfigError as exc:
        print(f"llm-gateway: configuration error: {exc}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    raise SystemExit(main())
