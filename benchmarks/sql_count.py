"""SQL statements per chat, counted by PostgreSQL itself.

``log_statement = 'all'`` is set on the scratch database only (``ALTER DATABASE``: no
restart, unlike ``pg_stat_statements``), a gateway is started after it so its connections
log, and the statements the server logged for that database during a few chats are counted
from the server log (``BENCH_POSTGRES_LOG``).
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from benchmarks import chat_load, processes
from benchmarks.chat_load import GatewayTarget, Users
from benchmarks.scratch import admin

POSTGRES_LOG = Path(
    os.environ.get("BENCH_POSTGRES_LOG", "/var/log/postgresql/postgresql-15-main.log")
)


def count_statements(text: str, database: str) -> Counter[str]:
    """Statements PostgreSQL logged (``log_statement = all``) for one database, by kind."""
    kinds: Counter[str] = Counter()
    marker = f"@{database} LOG:  "
    for line in text.splitlines():
        at = line.find(marker)
        if at < 0:
            continue
        rest = line[at + len(marker) :]
        if rest.startswith("statement: "):
            sql = rest.removeprefix("statement: ")
        elif rest.startswith("execute "):
            sql = rest.partition(": ")[2]
        else:
            continue
        word = sql.strip().split(" ", 1)[0].rstrip(";").upper()
        kinds[word or "PING (;)"] += 1
    return kinds


def statement_shapes(text: str, database: str) -> Counter[str]:
    """The same statements by their first 90 characters (to see which ones repeat)."""
    shapes: Counter[str] = Counter()
    marker = f"@{database} LOG:  "
    for line in text.splitlines():
        at = line.find(marker)
        if at >= 0:
            rest = line[at + len(marker) :]
            if rest.startswith(("statement: ", "execute ")):
                sql = rest.partition(": ")[2] if rest.startswith("execute") else rest[11:]
                shapes[sql.strip()[:90] or ";"] += 1
    return shapes


def _read_from(path: Path, offset: int) -> str:
    with path.open("rb") as log:
        log.seek(offset)
        return log.read().decode(errors="replace")


async def measure_sql(
    name: str,
    env: dict[str, str],
    workdir: Path,
    upstream: processes.FakeUpstream,
    users: Users,
    http: httpx.AsyncClient,
    chats: int,
    variants: str,
    expected_text: str,
    workers: int = 1,
) -> dict[str, Any]:
    """Statements per chat over ``chats`` chats, through a gateway of ``workers`` workers."""
    await admin(f"ALTER DATABASE \"{name}\" SET log_statement = 'all'")
    try:
        gateway = await processes.start_gateway(env, workdir, "gateway-sql", variants, workers)
        try:
            target = GatewayTarget(gateway.ws_url, http, expected_text)
            http.base_url = httpx.URL(gateway.base_url)
            await chat_load.open_loop(chat_load.gateway_chats(target, users.take(5)), 5, 1)  # warm
            await asyncio.sleep(chat_load.SETTLE_SECONDS)
            offset = (await asyncio.to_thread(POSTGRES_LOG.stat)).st_size
            _, outcomes = await chat_load.open_loop(
                chat_load.gateway_chats(target, users.take(chats)), 5, chats / 5
            )
            await asyncio.sleep(chat_load.SETTLE_SECONDS)
            text = await asyncio.to_thread(_read_from, POSTGRES_LOG, offset)
        finally:
            await processes.stop(gateway.process)
    finally:
        await admin(f'ALTER DATABASE "{name}" RESET log_statement')
    ok = sum(1 for o in outcomes if o.error is None)
    kinds = count_statements(text, name)
    total = sum(kinds.values())
    transactions = kinds["BEGIN"]
    per_chat = {kind: round(n / chats, 2) for kind, n in kinds.most_common()}
    shapes = [
        {"sql": sql, "per_chat": round(n / chats, 2)}
        for sql, n in statement_shapes(text, name).most_common(25)
    ]
    result = {
        "chats": chats,
        "completed": ok,
        "statements_per_chat": round(total / chats, 1),
        "without_begin_commit_ping": round(
            (total - kinds["BEGIN"] - kinds["COMMIT"] - kinds["ROLLBACK"] - kinds["PING (;)"])
            / chats,
            1,
        ),
        "transactions_per_chat": round(transactions / chats, 1),
        "by_kind_per_chat": per_chat,
        "statements": shapes,
        "method": "log_statement=all on the scratch database only (ALTER DATABASE), a gateway "
        "started after it, statements counted from the PostgreSQL log for "
        f"{chats} chats at 5/s after 5 warm-up chats; includes pool pre-ping round trips "
        "and anything in the background in those seconds (the sweeper runs every 30 s)",
    }
    print(
        f"SQL: {result['statements_per_chat']} statements per chat "
        f"({result['transactions_per_chat']} transactions; {per_chat})",
        flush=True,
    )
    return result
