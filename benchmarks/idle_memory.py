"""Resident memory of idle ``messageEvents`` subscriptions in the gateway.

The gateway's memory and CPU are its whole process tree's (``procfs``): with ``serve
--workers N``, the supervisor's and every worker's, VmRSS summed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import statistics
from typing import Any

from redis.asyncio import Redis
from websockets.asyncio.client import connect

from benchmarks import chat_load, processes, procfs
from benchmarks.chat_load import ChatUser
from benchmarks.scratch import MODEL
from llm_gateway.db.engine import Database, make_engine
from llm_gateway.services.chat import dialogs


@dataclasses.dataclass(frozen=True, slots=True)
class IdleSocket:
    """One websocket of the idle test: its user's token and the dialogs it subscribes to."""

    token: str
    dialog_ids: list[str]


async def extra_dialogs(database_url: str, users: list[ChatUser], each: int) -> list[IdleSocket]:
    """Give each user ``each`` dialogs in all (their own plus new ones)."""
    db = Database(make_engine(database_url, pool_size=2, max_overflow=0))
    sockets = []
    try:
        for user in users:
            async with db.transaction() as session:
                made = [
                    await dialogs.create_dialog(
                        session, user.user_id, dialogs.DialogDraft(model=MODEL), max_content=100
                    )
                    for _ in range(each - 1)
                ]
            sockets.append(IdleSocket(user.token, [user.dialog_id, *(str(d.id) for d in made)]))
    finally:
        await db.dispose()
    return sockets


async def measure_idle(
    gateway: processes.Gateway, sockets: list[IdleSocket], redis: Redis, compression: str | None
) -> dict[str, Any]:
    """The gateway's tree RSS before and while ``sockets`` hold their idle subscriptions."""
    count = sum(len(s.dialog_ids) for s in sockets)
    gate = asyncio.Semaphore(50)
    release = asyncio.Event()

    async def hold(socket: IdleSocket) -> None:
        async with gate:
            ws = await connect(
                gateway.ws_url,
                subprotocols=[chat_load.GRAPHQL_TRANSPORT_WS],
                open_timeout=30,
                compression=compression,
            )
            auth = {"Authorization": f"Bearer {socket.token}"}
            await ws.send(json.dumps({"type": "connection_init", "payload": auth}))
            json.loads(await ws.recv())
            for number, dialog_id in enumerate(socket.dialog_ids, 1):
                subscribe = {"query": chat_load.EVENTS, "variables": {"dialogId": dialog_id}}
                await ws.send(
                    json.dumps({"id": str(number), "type": "subscribe", "payload": subscribe})
                )
        try:
            await release.wait()
        finally:
            await ws.close()

    release.set()  # the code paths run once before the baseline is taken
    await asyncio.gather(*(hold(s) for s in sockets[:10]))
    release.clear()
    await asyncio.sleep(1.0)
    before = statistics.median(procfs.tree_rss_kib(gateway.pid) for _ in range(3))

    channels = [f"llmgw:dialog:{d}" for s in sockets for d in s.dialog_ids]
    holders = [asyncio.create_task(hold(s)) for s in sockets]
    try:
        async with asyncio.timeout(120):
            while True:
                counts = []
                for i in range(0, len(channels), 500):
                    counts += await redis.pubsub_numsub(*channels[i : i + 500])
                if sum(1 for _, n in counts if n > 0) == count:
                    break
                await asyncio.sleep(0.25)
        await asyncio.sleep(2.0)
        cpu_before = procfs.tree_cpu_seconds(gateway.pid)
        rss = [procfs.tree_rss_kib(gateway.pid)]
        for _ in range(4):
            await asyncio.sleep(1.0)
            rss.append(procfs.tree_rss_kib(gateway.pid))
        idle_cpu = (procfs.tree_cpu_seconds(gateway.pid) - cpu_before) / 4
        held = statistics.median(rss)
    finally:
        release.set()
        await asyncio.gather(*holders, return_exceptions=True)
    await asyncio.sleep(2.0)
    after_close = procfs.tree_rss_kib(gateway.pid)
    result = {
        "subscriptions": count,
        "sockets": len(sockets),
        "client_offers_deflate": compression is not None,
        "rss_before_mib": round(before / 1024, 1),
        "rss_with_subscriptions_mib": round(held / 1024, 1),
        "rss_after_closing_mib": round(after_close / 1024, 1),
        "kib_per_subscription": round((held - before) / count, 1),
        "gateway_cores_while_idle": round(idle_cpu, 3),
        "processes_in_tree": len(procfs.tree_pids(gateway.pid)),
        "load_average": procfs.load_average(),
    }
    print(
        f"idle: {count} subscriptions on {len(sockets)} sockets, "
        f"{result['kib_per_subscription']} KiB each "
        f"(RSS {result['rss_before_mib']} -> {result['rss_with_subscriptions_mib']} MiB)",
        flush=True,
    )
    return result
