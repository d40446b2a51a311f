"""SIGTERM drains: ``/readyz`` answers 503 at once, new sends are refused with a clear error,
running answers (chat and ``/v1``) finish within the grace period and are settled, open
websockets get their answer's end and then a proper close, a subscription over HTTP
(graphql-sse) its answer's end and then the protocol's completion, and the process exits 0."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from llm_gateway.db.engine import Database
from tests.chat.test_faults import (
    AUTH,
    codes,
    db,  # noqa: F401  (fixture)
    kinds,
    message_row,
    new_dialog,
    openai,  # noqa: F401  (fixture)
    send,
    sent_id,
)
from tests.chat.test_flow import EVENTS
from tests.chat_support import assert_exact_in
from tests.fakes import DEFAULT_OPENAI_KEY, OpenAIFake, Scenario
from tests.faults import gateway, until
from tests.live import graphql_socket
from tests.support import token

pytestmark = pytest.mark.postgres_only

REPLY = "".join(f"w{i} " for i in range(30))


async def test_sigterm_drains_then_exits_zero(
    database_url: str,
    openai: OpenAIFake,  # noqa: F811
    db: Database,  # noqa: F811
    tmp_path: Path,
) -> None:
    # Two answers of about 3 s each: one through GraphQL, one through /v1.
    openai.script(
        Scenario(text=REPLY, chunks=30, chunk_delay=0.1),
        Scenario(text=REPLY, chunks=30, chunk_delay=0.1),
    )
    async with gateway(
        tmp_path / "gateway",
        DATABASE_URL=database_url,
        OPENAI_API_KEY=DEFAULT_OPENAI_KEY,
        OPENAI_BASE_URL=openai.base_url,
        SHUTDOWN_GRACE_SECONDS="20",
    ) as process:
        server = await process.start()
        dialog_id = await new_dialog(server)
        async with (
            graphql_socket(server, AUTH) as socket,
            httpx.AsyncClient(base_url=server.base_url, timeout=30) as http,
            http.stream(
                "POST",
                "/graphql",
                headers={**AUTH, "Accept": "text/event-stream"},
                json={"query": EVENTS, "variables": {"dialogId": dialog_id}},
            ) as sse,
        ):
            # The stream's headers came: it runs (a late join would still get the answer).
            assert sse.headers["content-type"] == "text/event-stream"
            operation = await socket.subscribe(EVENTS, {"dialogId": dialog_id})
            message_id = sent_id(await send(server, dialog_id))
            api = http.stream(
                "POST",
                "/v1/chat/completions",
                headers={"Authorization": f"Bearer {token(7)}"},
                json={
                    "model": "gpt-4-turbo",
                    "messages": [{"role": "user", "content": "Count"}],
                    "stream": True,
                },
            )
            async with api as response:
                lines = response.aiter_lines()
                assert (await anext(lines)).startswith("data: {")
                assert process.process is not None
                process.process.send_signal(15)  # SIGTERM, mid-answer

                async def not_ready() -> bool:
                    return (await http.get("/readyz")).status_code == 503

                await until(not_ready, within=2, what="/readyz answered 503")
                refused = await send(server, dialog_id)
                assert codes(refused) == ["SERVICE_UNAVAILABLE"]
                assert "shutting down" in refused["errors"][0]["message"]
                late = await http.post(
                    "/v1/chat/completions",
                    headers={"Authorization": f"Bearer {token(7)}"},
                    json={"model": "gpt-4-turbo", "messages": [{"role": "user", "content": "x"}]},
                )
                assert late.status_code == 503
                assert late.json()["error"]["code"] == "service_unavailable"
                rest = [line async for line in lines]
            assert rest[-2:] == ["data: [DONE]", ""] or rest[-1] == "data: [DONE]"
            seen: list[str] = []
            async for payload in socket.events(operation):
                seen.extend(kinds([payload]))
                if seen[-1] == "MessageCompleted":
                    break
            # The dialog's subscription stays open for the next answer: the server ends it
            # with a proper close once the drain is over.
            close_code = await socket.expect_close()
            streamed = [line async for line in sse.aiter_lines()]
        code = await asyncio.wait_for(process.process.wait(), 25)
    assert code == 0, process.output()
    assert "Traceback" not in process.output()
    assert close_code in (1001, 1012)
    # The HTTP subscription got the answer's end, then a completion, not a cut.
    events = [line for line in streamed if line.startswith("event: ")]
    assert events[-1] == "event: complete"
    assert any("MessageCompleted" in line for line in streamed)
    answer = await message_row(db, message_id)
    assert (answer.status, answer.content) == ("complete", REPLY)
    await assert_exact_in(db)
    chunks = [json.loads(line[6:]) for line in rest if line.startswith("data: {")]
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
