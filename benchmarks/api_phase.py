"""One open-loop phase of OpenAI-API chats, and what it cost each process.

A chat is ``chat_load.direct_chat``: the official OpenAI SDK streams ``gpt-4-turbo`` with
``stream_options.include_usage``; TTFT runs to the first content chunk, total to the end
of the stream, and the text must be the fake upstream's. Each chat's client is a copy of
its target's client (``with_options``: the same connection pool) holding that chat's own
key, made before the phase starts. Gateway keys come from ``make_key_users``: a user with
a funded balance and one API key each, in the scratch database.

CPU is read from /proc before and after the chats: the server's whole process tree
(children included: ``serve --workers N``'s workers), the scratch database's PostgreSQL
backends, this load process. The server's RSS is its tree's, summed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import random
import time
from collections.abc import Coroutine, Iterator
from typing import Any

import openai

from benchmarks import chat_load, procfs
from benchmarks.chat_load import Chat, Outcome, PhaseStats
from benchmarks.scratch import BALANCE, admin
from llm_gateway.db.engine import Database, make_engine
from llm_gateway.services.money import api_keys, balances
from llm_gateway.settings import Settings


async def make_key_users(database_url: str, count: int) -> list[str]:
    """``count`` users, each with a funded balance and one gateway API key; the keys."""
    base = random.randrange(10**6, 10**12)
    ids = list(range(base, base + count))
    policy = dataclasses.replace(
        balances.MoneyPolicy.from_settings(Settings(_env_file=None)),  # type: ignore[call-arg]
        initial_balance=BALANCE,
    )
    db = Database(make_engine(database_url, pool_size=4, max_overflow=0))
    keys: dict[int, str] = {}

    async def batch(user_ids: list[int]) -> None:
        async with db.transaction() as session:
            for user_id in user_ids:
                await balances.ensure_account(session, user_id, policy)
                keys[user_id], _ = await api_keys.create_api_key(session, user_id, name="bench")

    try:
        chunks = [ids[i : i + 100] for i in range(0, len(ids), 100)]
        for group in range(0, len(chunks), 4):
            await asyncio.gather(*(batch(c) for c in chunks[group : group + 4]))
    finally:
        await db.dispose()
    return [keys[u] for u in ids]


class Keys:
    """Hands out keys; each chat takes its own."""

    def __init__(self, keys: Iterator[str]) -> None:
        self._keys = keys

    def take(self, count: int) -> list[str]:
        return [next(self._keys) for _ in range(count)]


def keyed_chats(client: openai.AsyncOpenAI, keys: list[str], model: str, expected: str) -> Chat:
    """Chat ``i`` streams with ``keys[i]`` over ``client``'s connection pool."""
    clients = [client.with_options(api_key=key) for key in keys]

    def chat(i: int, due: float) -> Coroutine[Any, Any, Outcome]:
        return chat_load.direct_chat(clients[i], model, expected, due)

    return chat


async def _backends_cpu(database: str) -> dict[int, float]:
    rows = await admin(f"SELECT pid FROM pg_stat_activity WHERE datname = '{database}'")
    return procfs.cpu_by_pid(row[0] for row in rows)


def _per_chat(seconds: float, stats: PhaseStats) -> float:
    return round(seconds * 1000 / max(1, stats.chats), 1)


async def measure(
    label: str,
    chat: Chat,
    rate: float,
    seconds: float,
    server: int | None,
    database: str,
) -> PhaseStats:
    """One open-loop phase; ``server`` is the PID of the process under test (None: direct)."""
    load_before = procfs.load_average()
    backends = await _backends_cpu(database)
    busy_before, _ = procfs.machine_busy_seconds()
    server_before = procfs.tree_cpu_seconds(server) if server else 0.0
    load_cpu = procfs.cpu_seconds(os.getpid())
    began = time.monotonic()
    # Direct: this load process alone (its tree would hold the servers and the upstream).
    async with procfs.rss_watch(server or os.getpid(), tree=server is not None) as rss:
        start, outcomes = await chat_load.open_loop(chat, rate, seconds)
    elapsed = time.monotonic() - began
    server_cpu = (procfs.tree_cpu_seconds(server) if server else 0.0) - server_before
    load_cpu = procfs.cpu_seconds(os.getpid()) - load_cpu
    busy, _ = procfs.machine_busy_seconds()
    after = await _backends_cpu(database)
    postgres = sum(s - backends.get(pid, 0.0) for pid, s in after.items())
    stats = chat_load.summarize(start, seconds, outcomes)
    stats.extra.update(
        cpu_ms_per_chat=_per_chat(server_cpu, stats) if server else None,
        postgres_cpu_ms_per_chat=_per_chat(postgres, stats),
        load_cpu_ms_per_chat=_per_chat(load_cpu, stats),
        cores={
            "server": round(server_cpu / elapsed, 2),
            "postgres": round(postgres / elapsed, 2),
            "load": round(load_cpu / elapsed, 2),
            "machine_busy": round((busy - busy_before) / elapsed, 2),
        },
        rss_mib={"max": round(max(rss) / 1024, 1), "end": round(rss[-1] / 1024, 1)},
        load_average={"before": load_before, "after": procfs.load_average()},
    )
    print(
        f"  {label:>8} {rate:>5g}/s: {stats.completed}/{stats.chats} ok, "
        f"TTFT p50 {stats.ttft_ms['p50']} p99 {stats.ttft_ms['p99']} ms, "
        f"total p50 {stats.total_ms['p50']} ms, {stats.throughput}/s, "
        f"errors {stats.errors or 0}, CPU ms/chat {stats.extra['cpu_ms_per_chat']} "
        f"(+pg {stats.extra['postgres_cpu_ms_per_chat']}, "
        f"load {stats.extra['load_cpu_ms_per_chat']}), cores {stats.extra['cores']}",
        flush=True,
    )
    await asyncio.sleep(chat_load.SETTLE_SECONDS)
    return stats
