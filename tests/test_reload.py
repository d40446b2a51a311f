"""Hot reload across instances: two real server processes on one PostgreSQL and one Redis.

A change made through instance A is what instance B serves within a second: models are read
per request, and B's cached provider settings are dropped on A's notice through Redis. The
instances cache settings for an hour here, so only that notice can explain a quick change.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from tests.conftest import REDIS_URL
from tests.fakes import DEFAULT_OPENAI_KEY, OpenAIFake, fake_openai
from tests.support import TEST_SECRET, token

GATEWAY = Path(sys.executable).with_name("llm-gateway")
STARTUP_SECONDS = 30.0
FOLLOW_SECONDS = 1.0  # what the issue promises
GIVE_UP_SECONDS = 10.0  # how long the polling looks before it reports a failure
POLL_SECONDS = 0.01
USER = 42


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@asynccontextmanager
async def gateway(database_url: str, openai_base_url: str, workdir: Path) -> AsyncIterator[str]:
    """``llm-gateway serve`` in its own process until the block ends; yields its base URL."""
    await asyncio.to_thread(workdir.mkdir)
    port = _free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SQL_", "DJANGO_", "JWT_", "OPENAI_", "REDIS_", "DATABASE_"))
    }
    env.update(
        DATABASE_URL=database_url,
        DJANGO_SECRET_KEY=TEST_SECRET,
        REDIS_URL=REDIS_URL,
        OPENAI_API_KEY=DEFAULT_OPENAI_KEY,
        OPENAI_BASE_URL=openai_base_url,
        CONFIG_CACHE_SECONDS="3600",
        DEBUG="false",
        LOG_LEVEL="WARNING",
    )
    log = workdir / "server.log"
    with log.open("wb") as sink:
        process = await asyncio.create_subprocess_exec(
            str(GATEWAY),
            "serve",
            "--port",
            str(port),
            cwd=workdir,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        await _wait_ready(base_url, process, log)
        yield base_url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(20):
                code = await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()
            raise
        output = await asyncio.to_thread(log.read_text)
        # uvicorn shuts down gracefully, then re-raises SIGTERM: -15 is a clean exit.
        assert code in (0, -signal.SIGTERM), output
        assert "Traceback" not in output, output


async def _wait_ready(base_url: str, process: asyncio.subprocess.Process, log: Path) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STARTUP_SECONDS
    async with httpx.AsyncClient(base_url=base_url) as client:
        while loop.time() < deadline:
            if process.returncode is not None:
                output = await asyncio.to_thread(log.read_text)
                raise AssertionError(f"the server exited: {output}")
            try:
                if (await client.get("/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("the server did not become ready in time")


class Instance:
    """One gateway process, spoken to as a frontend (user 42) or as staff."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def gql(
        self, query: str, variables: dict[str, Any] | None = None, *, staff: bool = False
    ) -> Any:
        bearer = token(900, staff=True) if staff else token(USER)
        response = await self.http.post(
            "/graphql",
            json={"query": query, "variables": variables or {}},
            headers={"Authorization": f"Bearer {bearer}"},
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert "errors" not in body, body
        return body["data"]

    async def model_names(self) -> list[str]:
        return [m["name"] for m in (await self.gql("{ models { name } }"))["models"]]


async def answered_by(
    instance: Instance, dialog_id: str, content: str, upstreams: dict[str, OpenAIFake]
) -> str:
    """Send ``content`` through ``instance``; once answered, the name of the upstream it
    reached. (Waiting for the answer keeps one generation per dialog at a time.)"""
    sent = await instance.gql(
        "mutation($input: SendMessageInput!) { sendMessage(input: $input) "
        "{ assistantMessage { id } } }",
        {"input": {"dialogId": dialog_id, "content": content}},
    )
    answer_id = sent["sendMessage"]["assistantMessage"]["id"]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + GIVE_UP_SECONDS
    while loop.time() < deadline:
        shown = await instance.gql(
            "query($id: UUID!) { dialog(id: $id) { lastMessage { id status } } }",
            {"id": dialog_id},
        )
        last = shown["dialog"]["lastMessage"]
        if last["id"] == answer_id and last["status"] != "STREAMING":
            reached = [
                name
                for name, fake in upstreams.items()
                if any(r.json["messages"][-1]["content"] == content for r in fake.chat_requests)
            ]
            assert len(reached) == 1, reached
            return reached[0]
        await asyncio.sleep(POLL_SECONDS)
    raise AssertionError(f"{content!r} was not answered in time")


async def seconds_until_upstream(
    instance: Instance, dialog_id: str, expected: str, upstreams: dict[str, OpenAIFake]
) -> float:
    """Probe until a message through ``instance`` reaches ``expected``; how long it took."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    for probe in range(1_000):
        if await answered_by(instance, dialog_id, f"probe {expected} {probe}", upstreams) == (
            expected
        ):
            return loop.time() - start
        if loop.time() - start > GIVE_UP_SECONDS:
            break
    raise AssertionError(f"messages never reached {expected} (still the old setting)")


async def set_in_database(database_url: str, key: str, value: str) -> None:
    """Change a setting behind the gateways' backs, as an operator's SQL script would."""
    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                text("UPDATE system_config SET value = :value WHERE key = :key"),
                {"key": key, "value": value},
            )
    finally:
        await engine.dispose()


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_a_change_on_one_instance_reaches_the_other_within_a_second(
    database_url: str, redis_available: str, tmp_path: Path
) -> None:
    async with (
        fake_openai() as old_upstream,
        fake_openai() as new_upstream,
        gateway(database_url, old_upstream.base_url, tmp_path / "a") as a_url,
        gateway(database_url, old_upstream.base_url, tmp_path / "b") as b_url,
        httpx.AsyncClient(base_url=a_url) as a_http,
        httpx.AsyncClient(base_url=b_url) as b_http,
    ):
        a, b = Instance(a_http), Instance(b_http)
        upstreams = {"old": old_upstream, "new": new_upstream}
        loop = asyncio.get_running_loop()

        # A model disabled on A is gone from B's list.
        assert "gpt-3.5-turbo" in await b.model_names()
        await a.gql(
            'mutation { updateModel(input: {name: "gpt-3.5-turbo", enabled: false}) { enabled } }',
            staff=True,
        )
        changed_at = loop.time()
        while "gpt-3.5-turbo" in await b.model_names():
            assert loop.time() - changed_at < GIVE_UP_SECONDS
            await asyncio.sleep(POLL_SECONDS)
        assert loop.time() - changed_at < FOLLOW_SECONDS

        # B has read (and cached) its provider settings: its messages go to the old URL.
        dialog = await b.gql('mutation { createDialog(input: {model: "gpt-4-turbo"}) { id } }')
        dialog_id = dialog["createDialog"]["id"]
        assert await answered_by(b, dialog_id, "warm up", upstreams) == "old"

        # A setting changed on A: B's next messages use it.
        await a.gql(
            "mutation($input: SetConfigInput!) { setConfig(input: $input) { key } }",
            {"input": {"key": "OPENAI_BASE_URL", "value": new_upstream.base_url}},
            staff=True,
        )
        assert await seconds_until_upstream(b, dialog_id, "new", upstreams) < FOLLOW_SECONDS

        # Changed behind their backs: B keeps its cached setting until an operator's
        # reload on A (the previous service's REST endpoint) tells every instance.
        await set_in_database(database_url, "OPENAI_BASE_URL", old_upstream.base_url)
        assert await answered_by(b, dialog_id, "still cached", upstreams) == "new"
        reload = await a_http.post(
            "/api/v1/admin/models/reload",
            headers={"Authorization": f"Bearer {token(900, staff=True)}"},
        )
        assert reload.status_code == 200, reload.text
        assert reload.json()["status"] == "ok"
        assert "gpt-3.5-turbo" not in reload.json()["models"]
        assert await seconds_until_upstream(b, dialog_id, "old", upstreams) < FOLLOW_SECONDS
