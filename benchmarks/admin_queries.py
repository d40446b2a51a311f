"""Staff queries on a large PostgreSQL database: usage statistics and ledger pages.

    .venv/bin/python -m benchmarks.admin_queries [--runs 7] [--keep]

Creates a scratch database (from TEST_POSTGRES_URL's server, default the local one),
migrates it to head and fills it server-side (``INSERT … SELECT generate_series``) with
5,000 users, 20,000 dialogs, 200,000 messages (half of them assistant answers over the
seeded models) and 1,000,000 ledger rows, all spread over the last 60 days in insertion
order, as a live database grows; then ANALYZE. It times the service calls the GraphQL
resolvers make (each in a fresh read session, as a request would): one warm-up, then the
median of ``--runs`` runs. The 50th ledger page is reached by walking the cursors.
Each call's statements are then run under ``EXPLAIN (ANALYZE, BUFFERS)`` and the indexes
their plans use are reported. Prints a table, writes
benchmarks/results/admin_queries.json and drops the database (unless ``--keep``).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import re
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import event, text
from sqlalchemy.engine import URL, make_url

from llm_gateway.db import migrate
from llm_gateway.db.engine import Database, make_engine
from llm_gateway.services.money import ledger as ledger_service
from llm_gateway.services.staff import reports, usage_stats

SERVER = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
RESULTS = Path(__file__).parent / "results" / "admin_queries.json"
USERS = 5_000
DIALOGS = 20_000
MESSAGE_PAIRS = 100_000  # a user message and its assistant answer each
LEDGER_ROWS = 1_000_000
AUDIT_ROWS = 20_000
DAYS = 60
PAGE = 50
TARGET_MS = 200.0
MODELS = ("gpt-4-turbo", "gpt-3.5-turbo", "claude-3-opus", "claude-3-sonnet")

# Rows are written in time order (ids and created_at rise together), like a live table.
FILL = [
    "SELECT setseed(0.42)",
    f"""
    INSERT INTO balances (user_id, balance, reserved, lifetime_used, created_at, updated_at)
    SELECT u, 100000, 0, 0, :start, :start FROM generate_series(1, {USERS}) AS u
    """,
    f"""
    INSERT INTO dialogs (id, user_id, title, model_id, created_at, updated_at, deleted_at)
    SELECT md5('dialog' || d)::uuid, 1 + d % {USERS}, 'Dialog ' || d,
           (SELECT array_agg(id ORDER BY name) FROM models
             WHERE name IN ('gpt-4-turbo', 'gpt-3.5-turbo', 'claude-3-opus',
                            'claude-3-sonnet'))[1 + d % 4],
           at, at + interval '1 hour',
           CASE WHEN d % 50 = 0 THEN at + interval '2 hours' END
    FROM (SELECT d, :start + (d::float8 / {DIALOGS}) * interval '{DAYS} days' AS at
          FROM generate_series(0, {DIALOGS} - 1) AS d) AS s
    """,
    # Pair p belongs to dialog p / 5; its answer comes 1-30 s after the question.
    f"""
    INSERT INTO messages (id, dialog_id, user_id, role, content, status, model_name,
                          prompt_tokens, completion_tokens, charged_tokens, cost_usd,
                          ttft_ms, total_ms, created_at, completed_at)
    SELECT md5('message' || p || '/' || r)::uuid, md5('dialog' || (p / 5))::uuid,
           1 + (p / 5) % {USERS},
           CASE r WHEN 0 THEN 'user' ELSE 'assistant' END,
           repeat('Lorem ipsum dolor sit amet. ', 8),
           CASE WHEN r = 0 THEN 'complete'
                WHEN x < 0.03 THEN 'failed'
                WHEN x < 0.05 THEN 'cancelled'
                ELSE 'complete' END,
           CASE WHEN r = 1 THEN (ARRAY['gpt-4-turbo', 'gpt-3.5-turbo', 'claude-3-opus',
                                       'claude-3-sonnet'])[1 + (p / 5) % 4] END,
           CASE WHEN r = 1 THEN 200 + (x * 1800)::int END,
           CASE WHEN r = 1 AND x >= 0.03 THEN 50 + (y * 950)::int
                WHEN r = 1 THEN 0 END,
           CASE WHEN r = 1 AND x >= 0.03 THEN 250 + (x * 1800)::int + (y * 950)::int
                WHEN r = 1 THEN 0 END,
           CASE WHEN r = 1 AND x >= 0.03
                THEN round((((200 + x * 1800) * 0.01 + (50 + y * 950) * 0.03) / 1000)::numeric, 8)
           END,
           CASE WHEN r = 1 THEN 150 + (y * 600)::int END,
           CASE WHEN r = 1 THEN 400 + (y * y * 20000)::int END,
           at + r * (1 + x * 29) * interval '1 second',
           at + r * (2 + x * 29) * interval '1 second'
    FROM (SELECT p, r, random() AS x, random() AS y,
                 :start + (p::float8 / {MESSAGE_PAIRS}) * interval '{DAYS} days' AS at
          FROM generate_series(0, {MESSAGE_PAIRS} - 1) AS p, generate_series(0, 1) AS r) AS s
    """,
    f"""
    INSERT INTO token_transactions (user_id, amount, kind, balance_after, model_name,
                                    prompt_tokens, completion_tokens, cost_usd, reason,
                                    created_at)
    SELECT 1 + (random() * ({USERS} - 1))::int,
           CASE WHEN kind IN ('usage', 'adjustment') THEN -(1 + (x * 3000)::int)
                ELSE 1 + (x * 50000)::int END,
           kind, (random() * 100000)::bigint,
           CASE WHEN kind = 'usage' THEN 'gpt-4-turbo' END,
           CASE WHEN kind = 'usage' THEN (x * 2000)::int END,
           CASE WHEN kind = 'usage' THEN (x * 1000)::int END,
           CASE WHEN kind = 'usage' THEN round((x * 0.05)::numeric, 8) END,
           CASE WHEN kind IN ('topup', 'adjustment') THEN 'benchmark' END,
           :start + (i::float8 / {LEDGER_ROWS}) * interval '{DAYS} days'
    FROM (SELECT i, x, CASE WHEN k < 0.90 THEN 'usage' WHEN k < 0.95 THEN 'topup'
                            WHEN k < 0.97 THEN 'refund' WHEN k < 0.99 THEN 'adjustment'
                            ELSE 'grant' END AS kind
          FROM (SELECT i, random() AS k, random() AS x
                FROM generate_series(1, {LEDGER_ROWS}) AS i) AS r) AS s
    """,
    f"""
    INSERT INTO audit_logs (actor_id, action, resource_type, resource_id, before, after,
                            ip_address, request_id, created_at)
    SELECT 900 + a % 5, (ARRAY['balance.topup', 'balance.adjust', 'config.set'])[1 + a % 3],
           'balance', (1 + a % {USERS})::text, '{{"balance": 1}}', '{{"balance": 2}}',
           '127.0.0.1', md5(a::text),
           :start + (a::float8 / {AUDIT_ROWS}) * interval '{DAYS} days'
    FROM generate_series(1, {AUDIT_ROWS}) AS a
    """,
]
TABLES = ("balances", "dialogs", "messages", "token_transactions", "audit_logs")


async def _admin(sql: str) -> None:
    url = make_url(SERVER).set(drivername="postgresql")
    connection = await asyncpg.connect(url.render_as_string(hide_password=False))
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


async def _fill(db: Database, start: dt.datetime) -> dict[str, float]:
    timings: dict[str, float] = {}
    async with db.transaction() as session:
        for statement in FILL:
            began = time.perf_counter()
            sql = statement.replace(":start", "CAST(:start AS timestamptz)")
            await session.execute(text(sql), {"start": start} if ":start" in statement else {})
            table = statement.split("INTO ")[1].split()[0] if "INTO " in statement else "seed"
            timings[table] = round(time.perf_counter() - began, 1)
            print(f"  filled {table:<20} in {timings[table]:>5} s", flush=True)
    async with db.engine.connect() as connection:
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        began = time.perf_counter()
        # VACUUM as autovacuum would on a live table (visibility map, then statistics).
        for table in TABLES:
            await autocommit.execute(text(f"VACUUM ANALYZE {table}"))
        timings["vacuum analyze"] = round(time.perf_counter() - began, 1)
    return timings


@contextmanager
def _statements(db: Database) -> Iterator[list[tuple[str, Any]]]:
    seen: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, parameters))

    event.listen(db.engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", record)


INDEX_USE = re.compile(r"(?:Index(?: Only)? Scan(?: Backward)? using|Bitmap Index Scan on) (\w+)")
SEQ_SCAN = re.compile(r"Seq Scan on (\w+)")


async def _explain(db: Database, statements: list[tuple[str, Any]]) -> list[dict[str, Any]]:
    plans = []
    async with db.engine.connect() as connection:
        raw = (await connection.get_raw_connection()).driver_connection
        assert raw is not None
        for statement, parameters in statements:
            rows = await raw.fetch("EXPLAIN (ANALYZE, BUFFERS) " + statement, *(parameters or ()))
            plan = [row[0] for row in rows]
            joined = "\n".join(plan)
            plans.append(
                {
                    "indexes": sorted(set(INDEX_USE.findall(joined))),
                    "seq_scans": sorted(set(SEQ_SCAN.findall(joined))),
                    "plan": plan,
                }
            )
    return plans


async def _time(
    db: Database, call: Callable[[], Awaitable[object]], runs: int
) -> tuple[float, list[dict[str, Any]]]:
    await call()  # warm-up: plans and pages cached, as in a running server
    samples = []
    for _ in range(runs):
        began = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - began) * 1000)
    with _statements(db) as statements:
        await call()
    return round(statistics.median(samples), 1), await _explain(db, statements)


async def _ledger_cursor(db: Database, pages: int) -> str | None:
    """The cursor that opens page ``pages + 1`` of everyone's ledger, found by walking."""
    after = None
    for _ in range(pages):
        async with db.read() as session:
            page = await ledger_service.list_transactions(
                session, None, first=PAGE, after=after, kind=None, max_page_size=PAGE
            )
        after = page.items[-1][0]
    return after


async def _cases(db: Database, today: dt.date) -> dict[str, Callable[[], Awaitable[object]]]:
    since = today - dt.timedelta(days=29)
    page_50 = await _ledger_cursor(db, 49)

    def stats(group_by: usage_stats.GroupBy, first_day: dt.date = since) -> Any:
        async def call() -> object:
            async with db.read() as session:
                return await usage_stats.usage_stats(session, first_day, today, group_by)

        return call

    def ledger(
        after: str | None,
        kind: str | None = None,
        user_id: int | None = None,
        days: tuple[dt.date, dt.date] | None = None,
    ) -> Any:
        since, until = reports.date_bounds(*days) if days else (None, None)

        async def call() -> object:
            async with db.read() as session:
                return await ledger_service.list_transactions(
                    session,
                    user_id,
                    first=PAGE,
                    after=after,
                    kind=kind,
                    max_page_size=PAGE,
                    since=since,
                    until=until,
                )

        return call

    async def dialogs_with_messages() -> object:
        # allDialogs(first: 50) { messages(first: 5) }: the page, then one batched load.
        async with db.read() as session:
            page = await reports.list_all_dialogs(
                session,
                first=PAGE,
                after=None,
                user_id=None,
                model=None,
                since=None,
                until=None,
                deleted=False,
                max_page_size=PAGE,
            )
        keys = [
            reports.message_page_key(row.id, 5, None, max_page_size=PAGE) for _, row in page.items
        ]
        async with db.read() as session:
            return await reports.message_pages(session, keys)

    async def audit_page() -> object:
        async with db.read() as session:
            return await reports.list_audit_logs(
                session,
                first=PAGE,
                after=None,
                actor_id=901,
                action=None,
                resource_type=None,
                resource_id=None,
                since=reports.day_start(since),
                until=None,
                max_page_size=PAGE,
            )

    return {
        "usageStats 30 days by DAY": stats(usage_stats.GroupBy.DAY),
        "usageStats 30 days by MODEL": stats(usage_stats.GroupBy.MODEL),
        "transactions, all users, page 1": ledger(None),
        "transactions, all users, page 50": ledger(page_50),
        # Not in the target, for context:
        "usageStats 30 days by USER": stats(usage_stats.GroupBy.USER),
        "usageStats 7 days by DAY": stats(usage_stats.GroupBy.DAY, today - dt.timedelta(days=6)),
        "transactions, kind ADJUSTMENT, page 1": ledger(None, kind="adjustment"),
        "transactions, 7 days a month ago, page 1": ledger(
            None, days=(today - dt.timedelta(days=36), today - dt.timedelta(days=30))
        ),
        "transactions, one user, page 1": ledger(None, user_id=4_321),
        "allDialogs page 1 + 5 messages each": dialogs_with_messages,
        "auditLogs, one actor, 30 days, page 1": audit_page,
    }


async def main_async(runs: int, keep: bool) -> dict[str, Any]:
    name = f"llmgw_bench_{uuid.uuid4().hex[:8]}"
    await _admin(f'CREATE DATABASE "{name}"')
    url: URL = make_url(SERVER).set(drivername="postgresql+asyncpg", database=name)
    db = Database(make_engine(url, pool_size=4, max_overflow=0))
    done = False
    try:
        await asyncio.to_thread(migrate.upgrade, url)
        now = dt.datetime.now(dt.UTC)
        print(f"filling {name} …", flush=True)
        fill = await _fill(db, now - dt.timedelta(days=DAYS))
        rows = []
        for label, call in (await _cases(db, now.date())).items():
            median_ms, plans = await _time(db, call, runs)
            indexes = sorted({i for p in plans for i in p["indexes"]})
            seq_scans = sorted({t for p in plans for t in p["seq_scans"]})
            rows.append(
                {
                    "query": label,
                    "median_ms": median_ms,
                    "indexes": indexes,
                    "seq_scans": seq_scans,
                    "plans": [p["plan"] for p in plans],
                }
            )
            print(
                f"{label:<40} {median_ms:>8.1f} ms   "
                f"indexes: {', '.join(indexes) or '-'}"
                + (f"   seq scan: {', '.join(seq_scans)}" if seq_scans else ""),
                flush=True,
            )
        done = True
        return {"fill_seconds": fill, "results": rows}
    finally:
        await db.dispose()
        if keep and done:
            print(f"kept database {name}")
        else:
            await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the filled database")
    args = parser.parse_args()
    began = time.perf_counter()
    outcome = asyncio.run(main_async(args.runs, args.keep))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "staff queries on PostgreSQL",
                "data": {
                    "users": USERS,
                    "dialogs": DIALOGS,
                    "messages": 2 * MESSAGE_PAIRS,
                    "ledger_rows": LEDGER_ROWS,
                    "audit_rows": AUDIT_ROWS,
                    "days": DAYS,
                    "page_size": PAGE,
                },
                "runs": args.runs,
                "target_ms": TARGET_MS,
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                "total_seconds": round(time.perf_counter() - began, 1),
                **outcome,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
