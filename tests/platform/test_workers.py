"""``llm-gateway serve --workers 2`` on PostgreSQL and Redis: a chat whose subscription and
send land on different workers completes, a cancel from the other worker stops an answer,
two workers starting at once recover each orphan once, and more than one worker without
Redis is refused with a one-line message.

Which worker serves a connection is read from /proc: the server side of our socket is a
socket inode one of the gateway's child processes holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from llm_gateway.db.base import utcnow
from llm_gateway.db.engine import Database
from llm_gateway.db.models import Message, Reservation, TokenTransaction
from llm_gateway.services.catalog.params import GenerationParams
from llm_gateway.services.chat import dialogs, sending
from llm_gateway.services.chat.planning import Overrides
from llm_gateway.services.money.balances import MoneyPolicy
from tests.chat.test_faults import (
    AUTH,
    SEND,
    db,  # noqa: F401  (fixture)
    kinds,
    openai,  # noqa: F401  (fixture)
)
from tests.chat.test_flow import EVENTS
from tests.chat_support import assert_exact_in
from tests.conftest import make_settings
from tests.fakes import DEFAULT_OPENAI_KEY, OpenAIFake, Scenario
from tests.faults import GatewayProcess, gateway, until
from tests.live import GATEWAY, GraphQLSocket, LiveServer, graphql_socket, scrubbed_environment

pytestmark = pytest.mark.postgres_only

REPLY = "".join(f"w{i} " for i in range(20))
CANCEL = "mutation($id: UUID!) { cancelGeneration(input: {messageId: $id}) { status } }"


def _children(parent: int) -> list[int]:
    pids = []
    with os.scandir("/proc") as entries:
        for entry in entries:
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    stat = Path(f"/proc/{entry.name}/stat").read_text()
                    if int(stat[stat.rindex(")") + 2 :].split()[1]) == parent:
                        pids.append(int(entry.name))
    return pids


def _server_inode(client_port: int, server_port: int) -> str | None:
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, inode = fields[1], fields[2], fields[9]
        if int(local.split(":")[1], 16) == server_port and int(remote.split(":")[1], 16) == (
            client_port
        ):
            return inode
    return None


def serving_worker(process: GatewayProcess, socket: GraphQLSocket) -> int:
    """The pid of the worker process that holds the server side of ``socket``."""
    assert process.process is not None
    inode = _server_inode(socket.connection.local_address[1], process.port)
    assert inode is not None
    for pid in _children(process.process.pid):
        with contextlib.suppress(OSError), os.scandir(f"/proc/{pid}/fd") as fds:
            if any(os.readlink(fd.path) == f"socket:[{inode}]" for fd in fds):
                return pid
    raise AssertionError("no worker holds the connection")


@contextlib.asynccontextmanager
async def sockets_on_two_workers(
    process: GatewayProcess, server: LiveServer
) -> AsyncIterator[tuple[GraphQLSocket, GraphQLSocket]]:
    """Two sockets served by different workers (connections are spread by the kernel)."""
    async with contextlib.AsyncExitStack() as stack:
        by_worker: dict[int, GraphQLSocket] = {}
        for _ in range(50):  # the second worker may still be starting: keep trying a while
            socket = await stack.enter_async_context(graphql_socket(server, AUTH))
            by_worker.setdefault(serving_worker(process, socket), socket)
            if len(by_worker) == 2:
                first, second = by_worker.values()
                yield first, second
                return
            await asyncio.sleep(0.2)
        raise AssertionError("every connection went to the same worker")


def _workers_env(database_url: str, redis_url: str, upstream: OpenAIFake) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "OPENAI_API_KEY": DEFAULT_OPENAI_KEY,
        "OPENAI_BASE_URL": upstream.base_url,
        "WEB_CONCURRENCY": "2",
    }


async def _until_event(socket: GraphQLSocket, operation: str, kind: str) -> list[str]:
    seen: list[str] = []
    async for payload in socket.events(operation):
        seen.extend(kinds([payload]))
        if seen[-1] == kind:
            break
    return seen


async def test_a_chat_and_a_cancel_across_two_workers(
    database_url: str,
    redis_available: str,
    openai: OpenAIFake,  # noqa: F811
    db: Database,  # noqa: F811
    tmp_path: Path,
) -> None:
    openai.script(
        Scenario(text=REPLY, chunks=20, chunk_delay=0.02),
        Scenario(text=REPLY, chunks=20, chunk_delay=0.5),
    )
    env = _workers_env(database_url, redis_available, openai)
    async with gateway(tmp_path / "gateway", **env) as process:
        server = await process.start()
        async with sockets_on_two_workers(process, server) as (a, b):
            created = await b.execute(
                'mutation { createDialog(input: {model: "gpt-4-turbo"}) { id } }'
            )
            dialog_id = created["data"]["createDialog"]["id"]
            operation = await a.subscribe(EVENTS, {"dialogId": dialog_id})
            await asyncio.sleep(0.2)  # the subscription is live before the send
            sent = await b.execute(SEND, {"input": {"dialogId": dialog_id, "content": "Hi"}})
            first = sent["data"]["sendMessage"]["assistantMessage"]["id"]
            seen = await _until_event(a, operation, "MessageCompleted")
            assert seen[0] == "MessageStarted"
            assert "MessageDelta" in seen
            # A second answer, streaming slowly, is cancelled from the other worker.
            sent = await a.execute(SEND, {"input": {"dialogId": dialog_id, "content": "More"}})
            second = sent["data"]["sendMessage"]["assistantMessage"]["id"]
            await _until_event(a, operation, "MessageDelta")
            cancelled = await b.execute(CANCEL, {"id": second})
            assert cancelled["data"]["cancelGeneration"]["status"] == "CANCELLED"
            assert (await _until_event(a, operation, "MessageFailed"))[-1] == "MessageFailed"
        code = await process.terminate(within=15)
    assert code == 0, process.output()
    async with db.read() as session:
        statuses = {
            str(row.id): row.status
            for row in await session.scalars(select(Message).where(Message.role == "assistant"))
        }
    assert statuses == {first: "complete", second: "cancelled"}
    await assert_exact_in(db)


async def _orphans(database_url: str, count: int) -> list[uuid.UUID]:
    """Answers a dead instance left: streaming, partly saved, their holds' leases lapsed."""
    from llm_gateway.db.engine import make_engine

    policy = MoneyPolicy.from_settings(make_settings(database_url))
    database = Database(make_engine(database_url))
    made = []
    try:
        for _ in range(count):
            async with database.transaction() as session:
                dialog = await dialogs.create_dialog(
                    session, 7, dialogs.DialogDraft(model="gpt-4-turbo"), max_content=1000
                )
                sent = await sending.send_message(
                    session,
                    7,
                    dialog.id,
                    "Hello",
                    idempotency_key=None,
                    overrides=Overrides(params=GenerationParams(max_tokens=100)),
                    max_content=1000,
                    policy=policy,
                    instance_id="dead-instance",
                )
                assert sent.job is not None  # held, not refused
                sent.assistant_message.content = "partial answer"
                made.append(sent.assistant_message.id)
        async with database.transaction() as session:
            await session.execute(update(Reservation).values(expires_at=utcnow() - policy.lease))
    finally:
        await database.dispose()
    return made


async def test_two_workers_starting_at_once_recover_each_orphan_once(
    database_url: str,
    redis_available: str,
    openai: OpenAIFake,  # noqa: F811
    db: Database,  # noqa: F811
    tmp_path: Path,
) -> None:
    orphans = await _orphans(database_url, 4)
    env = _workers_env(database_url, redis_available, openai)
    async with gateway(tmp_path / "gateway", **env) as process:
        await process.start()

        async def none_held() -> bool:
            async with db.read() as session:
                held = await session.scalar(
                    select(func.count()).select_from(Reservation).where(Reservation.state == "held")
                )
            return held == 0

        await until(none_held, within=20, what="the orphans were recovered")
        code = await process.terminate(within=15)
    assert code == 0, process.output()
    async with db.read() as session:
        rows = (await session.scalars(select(Message).where(Message.id.in_(orphans)))).all()
        usage = (
            await session.scalars(select(TokenTransaction).where(TokenTransaction.kind == "usage"))
        ).all()
    assert {row.status for row in rows} == {"interrupted"}
    assert sorted(str(u.message_id) for u in usage) == sorted(str(o) for o in orphans)
    await assert_exact_in(db)


def test_more_than_one_worker_without_redis_is_refused(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(GATEWAY), "serve", "--workers", "2"],
        cwd=tmp_path,
        env={**scrubbed_environment(), "DATABASE_URL": "sqlite+aiosqlite:///x.sqlite3"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "REDIS_URL" in lines[0]
