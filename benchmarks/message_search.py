"""One user's full-text search on PostgreSQL at 1,000,000 messages across 5,000 users.

    .venv/bin/python -m benchmarks.message_search [--quick] [--queries 300] [--keep] [--rebuild]

Builds a database on TEST_POSTGRES_URL's server (default the local one): migrated to the
revision before the search (0006), filled server-side (``INSERT … SELECT generate_series``)
with 50,000 dialogs (1 in 50 deleted) and 1,000,000 messages in English and Russian
(benchmarks/search_corpus.py), then migrated to head, which is timed: that migration adds the
generated tsvector and builds its GIN index over rows that exist, as it would in production.
Then ``VACUUM ANALYZE``. A kept database (``--keep``) is reused by the next run.

It then times the service calls behind ``searchMessages(query, first: 20)`` and
``dialogs(search)`` for random (user, word) pairs, each call in a fresh read session as a
request would have, after 20 warm-up calls; and the second page of the searches that have
one. Reports p50/p95/p99 and the plan (EXPLAIN ANALYZE) of the slowest search. Prints a
table and writes benchmarks/results/message_search.json (``--quick``: a tenth of the data,
message_search_quick.json).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import random
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import event, text
from sqlalchemy.engine import URL, make_url

from benchmarks.search_corpus import ENGLISH, QUERIES, RUSSIAN, fill_statements
from llm_gateway.db import migrate
from llm_gateway.db.engine import Database, make_engine
from llm_gateway.services.chat import dialogs
from llm_gateway.services.chat.search import hits

SERVER = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
RESULTS = Path(__file__).parent / "results"
PAGE = 20
TARGET_P95_MS = 50.0
WARM_UP = 20


def _server_dsn(database: str) -> str:
    url = make_url(SERVER).set(drivername="postgresql", database=database)
    return url.render_as_string(hide_password=False)


async def _admin(sql: str) -> Any:
    connection = await asyncpg.connect(_server_dsn(make_url(SERVER).database or "postgres"))
    try:
        return await connection.fetchval(sql)
    finally:
        await connection.close()


async def _messages_at_head(name: str) -> int | None:
    """How many messages a kept database holds, if it is at head; else None."""
    if not await _admin(f"SELECT 1 FROM pg_database WHERE datname = '{name}'"):
        return None
    connection = await asyncpg.connect(_server_dsn(name))
    try:
        revision = await connection.fetchval("SELECT version_num FROM alembic_version")
        count = await connection.fetchval("SELECT count(*) FROM messages")
    except asyncpg.PostgresError:
        return None
    finally:
        await connection.close()
    return int(count) if revision == migrate.head_revision() else None


async def _build(url: URL, users: int, messages: int) -> dict[str, float]:
    timings: dict[str, float] = {}
    await asyncio.to_thread(migrate.upgrade, url, "0006")
    db = Database(make_engine(url, pool_size=1, max_overflow=0))
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    try:
        async with db.transaction() as session:
            for statement, table in zip(
                fill_statements(users, messages // 20, messages),
                ("dialogs", "messages"),
                strict=True,
            ):
                began = time.perf_counter()
                params: dict[str, Any] = {"start": start, "en": ENGLISH, "ru": RUSSIAN}
                sql = statement.replace(":start", "CAST(:start AS timestamptz)")
                await session.execute(
                    text(sql), {k: v for k, v in params.items() if f":{k}" in statement}
                )
                timings[table] = round(time.perf_counter() - began, 1)
                print(f"  filled {table:<10} in {timings[table]:>6} s", flush=True)
    finally:
        await db.dispose()
    began = time.perf_counter()
    await asyncio.to_thread(migrate.upgrade, url)
    timings["migration 0007"] = round(time.perf_counter() - began, 1)
    print(f"  migrated to head (tsvector + GIN) in {timings['migration 0007']} s", flush=True)
    connection = await asyncpg.connect(_server_dsn(url.database or ""))
    try:
        began = time.perf_counter()
        await connection.execute("VACUUM ANALYZE dialogs")
        await connection.execute("VACUUM ANALYZE messages")
        timings["vacuum analyze"] = round(time.perf_counter() - began, 1)
    finally:
        await connection.close()
    return timings


def _percentiles(samples: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return {
        "p50_ms": round(cuts[49], 2),
        "p95_ms": round(cuts[94], 2),
        "p99_ms": round(cuts[98], 2),
        "max_ms": round(max(samples), 2),
        "calls": len(samples),
    }


async def _timed(call: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    began = time.perf_counter()
    result = await call()
    return (time.perf_counter() - began) * 1000, result


async def _measure(db: Database, users: int, queries: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    pairs = [(rng.randint(1, users), rng.choice(QUERIES)) for _ in range(queries + WARM_UP)]

    def searching(user: int, word: str, after: str | None = None) -> Any:
        async def call() -> Any:
            async with db.read() as session:
                return await hits.search_messages(
                    session,
                    user,
                    query=word,
                    first=PAGE,
                    after=after,
                    dialog_id=None,
                    max_page_size=100,
                )

        return call

    def listing(user: int, word: str) -> Any:
        async def call() -> Any:
            async with db.read() as session:
                return await dialogs.list_dialogs(
                    session, user, first=PAGE, after=None, search=word, max_page_size=100
                )

        return call

    for user, word in pairs[:WARM_UP]:
        await searching(user, word)()
    first_pages: list[float] = []
    second_pages: list[float] = []
    dialog_lists: list[float] = []
    found: list[int] = []
    slowest: tuple[float, int, str] = (0.0, 0, "")
    for user, word in pairs[WARM_UP:]:
        elapsed, page = await _timed(searching(user, word))
        first_pages.append(elapsed)
        found.append(len(page.items))
        slowest = max(slowest, (elapsed, user, word))
        if page.has_next_page:
            second_pages.append((await _timed(searching(user, word, page.items[-1][0])))[0])
        dialog_lists.append((await _timed(listing(user, word)))[0])
    return {
        "searchMessages, page 1": _percentiles(first_pages),
        "searchMessages, page 2": _percentiles(second_pages),
        "dialogs(search)": _percentiles(dialog_lists),
        "hits_on_page_1": {
            "none": sum(1 for n in found if n == 0),
            "full_page": sum(1 for n in found if n == PAGE),
            "mean": round(statistics.mean(found), 1),
        },
        "slowest": {"ms": round(slowest[0], 2), "user": slowest[1], "query": slowest[2]},
    }


async def _plan(db: Database, user: int, word: str) -> list[str]:
    """EXPLAIN (ANALYZE, BUFFERS) of the statements of one search."""
    seen: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        seen.append((statement, parameters))

    event.listen(db.engine.sync_engine, "before_cursor_execute", record)
    try:
        async with db.read() as session:
            await hits.search_messages(
                session,
                user,
                query=word,
                first=PAGE,
                after=None,
                dialog_id=None,
                max_page_size=100,
            )
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", record)
    lines: list[str] = []
    async with db.engine.connect() as connection:
        raw = (await connection.get_raw_connection()).driver_connection
        assert raw is not None
        for statement, parameters in seen:
            if statement.lstrip().upper().startswith(("SELECT", "WITH")):
                rows = await raw.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {statement}", *parameters)
                lines += [row[0] for row in rows] + [""]
    return lines


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    users = 500 if args.quick else 5_000
    messages = 100_000 if args.quick else 1_000_000
    name = "llmgw_bench_search_quick" if args.quick else "llmgw_bench_search"
    url = make_url(SERVER).set(drivername="postgresql+asyncpg", database=name)
    kept = None if args.rebuild else await _messages_at_head(name)
    build: dict[str, float] | str
    if kept == messages:
        print(f"reusing {name} ({messages:,} messages)", flush=True)
        build = "reused"
    else:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await _admin(f'CREATE DATABASE "{name}"')
        print(f"building {name}: {messages:,} messages, {users:,} users …", flush=True)
        build = await _build(url, users, messages)
    db = Database(make_engine(url, pool_size=2, max_overflow=0))
    try:
        results = await _measure(db, users, args.queries, args.seed)
        slowest = results["slowest"]
        plan = await _plan(db, slowest["user"], slowest["query"])
    finally:
        await db.dispose()
        if not args.keep:
            await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return {
        "data": {"users": users, "messages": messages, "dialogs": messages // 20},
        "build_seconds": build,
        "results": results,
        "slowest_plan": plan,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="100,000 messages, 500 users")
    parser.add_argument("--queries", type=int, default=300, help="timed (user, word) pairs")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--keep", action="store_true", help="keep the database for next time")
    parser.add_argument("--rebuild", action="store_true", help="build even if one is kept")
    args = parser.parse_args()
    began = time.perf_counter()
    outcome = asyncio.run(main_async(args))
    output = RESULTS / ("message_search_quick.json" if args.quick else "message_search.json")
    output.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "benchmark": "one user's full-text search on PostgreSQL",
        "page_size": PAGE,
        "queries": args.queries,
        "seed": args.seed,
        "target_p95_ms": TARGET_P95_MS,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "total_seconds": round(time.perf_counter() - began, 1),
        **outcome,
    }
    output.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(f"\n{'call':<24} {'p50':>8} {'p95':>8} {'p99':>8} {'max':>8}  calls")
    for label, row in outcome["results"].items():
        if "p50_ms" in row:
            print(
                f"{label:<24} {row['p50_ms']:>6.1f}ms {row['p95_ms']:>6.1f}ms "
                f"{row['p99_ms']:>6.1f}ms {row['max_ms']:>6.1f}ms  {row['calls']}"
            )
    print(f"hits on page 1: {outcome['results']['hits_on_page_1']}")
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
