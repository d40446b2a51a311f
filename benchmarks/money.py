"""Reserve + settle pairs per second on PostgreSQL at several concurrencies.

    .venv/bin/python -m benchmarks.money [--seconds 10] [--concurrency 1,16,64]

Creates a scratch database (from TEST_POSTGRES_URL's server, default the local one),
migrates it, gives each worker its own user with a large balance, and runs closed loops
for a fixed time: each iteration reserves a hold in one transaction and settles it in
another, exactly as the chat flow does around a provider call. A second run puts every
worker on the same user, the worst case for row locks. Prints a table and writes
benchmarks/results/money.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from llm_gateway.db import migrate
from llm_gateway.db.engine import Database, make_engine
from llm_gateway.providers.base import Usage
from llm_gateway.services.money import balances, holds, ledger
from llm_gateway.services.staff.audit import Actor
from llm_gateway.settings import Settings

SERVER = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
PRICING = holds.Pricing("bench", Decimal(1), Decimal(1), Decimal("0.01"), Decimal("0.03"))
RESULTS = Path(__file__).parent / "results" / "money.json"


async def _admin(sql: str) -> None:
    url = make_url(SERVER).set(drivername="postgresql")
    connection = await asyncpg.connect(url.render_as_string(hide_password=False))
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


async def _run(db: Database, users: list[int], seconds: float) -> dict[str, Any]:
    policy = balances.MoneyPolicy.from_settings(Settings(_env_file=None))  # type: ignore[call-arg]
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def worker(user: int) -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            async with db.transaction() as session:
                hold = await holds.reserve(session, user, PRICING, 300, 700, policy)
            async with db.transaction() as session:
                await holds.settle(session, hold.reservation_id, PRICING, Usage(300, 450))
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker(u) for u in users))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "pairs": len(latencies),
        "pairs_per_second": round(len(latencies) / elapsed, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 2),
    }


async def _prepare(db: Database, users: list[int]) -> None:
    policy = balances.MoneyPolicy.from_settings(Settings(_env_file=None))  # type: ignore[call-arg]
    for user in users:
        async with db.transaction() as session:
            await ledger.change_balance(
                session,
                Actor(0),
                user,
                10**11,
                kind="topup",
                reason="bench",
                idempotency_key=None,
                policy=policy,
            )


async def main_async(seconds: float, levels: list[int]) -> list[dict[str, Any]]:
    name = f"llmgw_bench_{uuid.uuid4().hex[:8]}"
    await _admin(f'CREATE DATABASE "{name}"')
    url = make_url(SERVER).set(drivername="postgresql+asyncpg", database=name)
    try:
        await asyncio.to_thread(migrate.upgrade, url)
        rows = []
        for shared in (False, True):
            for level in levels:
                db = Database(make_engine(url, pool_size=level + 4, max_overflow=0))
                try:
                    users = (
                        [1] * level if shared else list(range(1_000 * level, 1_000 * level + level))
                    )
                    await _prepare(db, sorted(set(users)))
                    result = await _run(db, users, seconds)
                finally:
                    await db.dispose()
                rows.append(
                    {
                        "concurrency": level,
                        "users": "one shared" if shared else "one each",
                        **result,
                    }
                )
                print(
                    f"concurrency {level:>3} ({rows[-1]['users']:>10}): "
                    f"{result['pairs_per_second']:>8} pairs/s  p50 {result['p50_ms']:>7} ms  "
                    f"p99 {result['p99_ms']:>7} ms",
                    flush=True,
                )
        return rows
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", default="1,16,64")
    args = parser.parse_args()
    levels = [int(x) for x in args.concurrency.split(",")]
    rows = asyncio.run(main_async(args.seconds, levels))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "reserve+settle pairs on PostgreSQL",
                "seconds_per_level": args.seconds,
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                "results": rows,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
