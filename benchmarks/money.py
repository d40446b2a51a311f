"""Reserve + settle pairs per second on PostgreSQL at several concurrencies.

    .venv/bin/python -m benchmarks.money [--seconds 10] [--concurrency 1,16,64] [--processes 2]

Creates a scratch database (from TEST_POSTGRES_URL's server, default the local one),
migrates it, gives each worker its own user with a large balance, and runs closed loops
for a fixed time: each iteration reserves a hold in one transaction and settles it in
another, exactly as the chat flow does around a provider call (on uvloop, as the server
runs). A second run puts every
worker on the same user, the worst case for row locks. Prints a table and writes
benchmarks/results/money.json (or ``--output``).

With ``--processes N`` each concurrency level is split over N OS processes (as under
``serve --workers N``: one event loop, one pool each), started with multiprocessing's
'spawn', each with its own engine on the same database. They start together: each opens
a connection, reports ready, and waits for a start time the parent sends once all are
ready; each runs to that start plus ``--seconds``. Pairs/s is every process's pairs over
the time from that start to the last one's end; p50/p99 come from all latencies merged.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import statistics
import time
import uuid
from decimal import Decimal
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import asyncpg
import uvloop
from sqlalchemy.engine import URL, make_url

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


async def _loops(db: Database, users: list[int], deadline: float) -> list[float]:
    """One closed loop per entry of ``users`` until ``deadline`` (``perf_counter``); the
    seconds each reserve+settle pair took."""
    policy = balances.MoneyPolicy.from_settings(Settings(_env_file=None))  # type: ignore[call-arg]
    latencies: list[float] = []

    async def worker(user: int) -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            async with db.transaction() as session:
                hold = await holds.reserve(session, user, PRICING, 300, 700, policy)
            async with db.transaction() as session:
                await holds.settle(session, hold.reservation_id, PRICING, Usage(300, 450))
            latencies.append(time.perf_counter() - started)

    await asyncio.gather(*(worker(u) for u in users))
    return latencies


def _summary(latencies: list[float], elapsed: float) -> dict[str, Any]:
    latencies.sort()
    return {
        "pairs": len(latencies),
        "pairs_per_second": round(len(latencies) / elapsed, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 2),
    }


async def _run(db: Database, users: list[int], seconds: float) -> dict[str, Any]:
    started = time.perf_counter()
    latencies = await _loops(db, users, started + seconds)
    return _summary(latencies, time.perf_counter() - started)


# -- several processes ---------------------------------------------------------------------


def _child(url: str, users: list[int], seconds: float, pipe: Connection) -> None:
    """One process's share of the loops (the target of a spawned process)."""
    uvloop.run(_child_async(url, users, seconds, pipe))


async def _child_async(url: str, users: list[int], seconds: float, pipe: Connection) -> None:
    """Connect (as ``_prepare`` does for one process), report ready, wait for the shared
    start (wall clock), loop until it plus ``seconds``; send (latencies, end time)."""
    db = Database(make_engine(url, pool_size=len(users) + 4, max_overflow=0))
    try:
        await db.ping()
        pipe.send("ready")
        start_at: float = await asyncio.to_thread(pipe.recv)
        await asyncio.sleep(start_at - time.time())
        deadline = time.perf_counter() + (start_at + seconds - time.time())
        latencies = await _loops(db, users, deadline)
        pipe.send((latencies, time.time()))
    finally:
        await db.dispose()
        pipe.close()


async def _run_processes(url: str, shares: list[list[int]], seconds: float) -> dict[str, Any]:
    """``_run`` with the users split over one spawned process per share."""
    spawn = multiprocessing.get_context("spawn")
    pipes: list[Connection] = []
    children = []
    try:
        for share in shares:
            mine, theirs = spawn.Pipe()
            child = spawn.Process(target=_child, args=(url, share, seconds, theirs), daemon=True)
            child.start()
            theirs.close()  # so a child that dies is an EOFError here, not a hang
            pipes.append(mine)
            children.append(child)
        for pipe in pipes:
            await asyncio.to_thread(pipe.recv)  # "ready"
        start_at = time.time() + 0.1
        for pipe in pipes:
            pipe.send(start_at)
        latencies: list[float] = []
        ended = start_at
        for pipe in pipes:
            theirs_latencies, their_end = await asyncio.to_thread(pipe.recv)
            latencies += theirs_latencies
            ended = max(ended, their_end)
    finally:
        for child in children:
            await asyncio.to_thread(child.join, 30)
            if child.is_alive():
                child.terminate()
        for pipe in pipes:
            pipe.close()
    return _summary(latencies, ended - start_at)


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


async def _level(
    url: URL, users: list[int], processes: int, seconds: float
) -> tuple[int, dict[str, Any]]:
    """Fund ``users`` and run their loops: here, or split over up to ``processes`` spawned
    processes (users dealt round-robin; this pool closed first). (processes used, result)."""
    shares = [users[i::processes] for i in range(min(processes, len(users)))]
    db = Database(make_engine(url, pool_size=len(users) + 4, max_overflow=0))
    try:
        await _prepare(db, sorted(set(users)))
        if len(shares) == 1:
            return 1, await _run(db, users, seconds)
    finally:
        await db.dispose()
    plain = url.render_as_string(hide_password=False)
    return len(shares), await _run_processes(plain, shares, seconds)


async def main_async(seconds: float, levels: list[int], processes: int = 1) -> list[dict[str, Any]]:
    name = f"llmgw_bench_{uuid.uuid4().hex[:8]}"
    await _admin(f'CREATE DATABASE "{name}"')
    url = make_url(SERVER).set(drivername="postgresql+asyncpg", database=name)
    try:
        await asyncio.to_thread(migrate.upgrade, url)
        rows = []
        for shared in (False, True):
            for level in levels:
                users = [1] * level if shared else list(range(1_000 * level, 1_000 * level + level))
                used, result = await _level(url, users, processes, seconds)
                rows.append(
                    {
                        "concurrency": level,
                        "users": "one shared" if shared else "one each",
                        "processes": used,
                        **result,
                    }
                )
                print(
                    f"concurrency {level:>3} ({rows[-1]['users']:>10}): "
                    f"{result['pairs_per_second']:>8} pairs/s  p50 {result['p50_ms']:>7} ms  "
                    f"p99 {result['p99_ms']:>7} ms" + (f"  ({used} processes)" if used > 1 else ""),
                    flush=True,
                )
        return rows
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", default="1,16,64")
    parser.add_argument(
        "--processes", type=int, default=1, help="OS processes each level is split over"
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.processes < 1:
        parser.error("--processes must be at least 1")
    levels = [int(x) for x in args.concurrency.split(",")]
    rows = uvloop.run(main_async(args.seconds, levels, args.processes))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        json.dumps(
            {
                "benchmark": "reserve+settle pairs on PostgreSQL",
                "seconds_per_level": args.seconds,
                "processes": args.processes,
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                "results": rows,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
