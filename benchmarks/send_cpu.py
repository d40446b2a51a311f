"""CPU of one ``sendMessage`` as a conversation grows, in-process, on PostgreSQL.

A chat's later questions follow a branch of earlier messages, which the send reads to
build the prompt (the overhead benchmark's chats are each a dialog's first question, which
reads none). One user sends ``--messages`` questions in one dialog to the built-in mock
model, one at a time, each after the previous answer ended; the process CPU of each
``sendMessage`` request (parsing, resolving, the send's transaction, the response) is
reported as medians over windows of the dialog's length.

    python -m benchmarks.send_cpu [--messages 100] [--output benchmarks/results/send_cpu.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from pydantic import SecretStr

from benchmarks.scratch import SECRET, scratch_database
from llm_gateway.app import create_app
from llm_gateway.auth import mint_access_token
from llm_gateway.settings import Settings

RESULTS = Path(__file__).parent / "results"
USER = 7
SEND = """mutation($input: SendMessageInput!) {
  sendMessage(input: $input) { userMessage { id } assistantMessage { id status } }
}"""


async def measure(database_url: str, messages: int) -> list[float]:
    """CPU milliseconds of each of ``messages`` sends into one dialog."""
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=database_url,
        django_secret_key=SecretStr(SECRET),
        initial_token_balance=10**9,
    )
    app = create_app(settings)
    headers = {"Authorization": f"Bearer {mint_access_token(SECRET, USER)}"}
    cpu: list[float] = []
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://gateway", headers=headers
        ) as client:

            async def graphql(query: str, variables: dict[str, Any]) -> dict[str, Any]:
                body = (
                    await client.post("/graphql", json={"query": query, "variables": variables})
                ).json()
                assert "errors" not in body, body
                data: dict[str, Any] = body["data"]
                return data

            created = await graphql(
                "mutation($input: CreateDialogInput!) { createDialog(input: $input) { id } }",
                {"input": {"model": "mock"}},
            )
            dialog_id = created["createDialog"]["id"]
            generations = app.state.services.generations
            for number in range(messages):
                started = time.process_time()
                sent = await graphql(
                    SEND,
                    {"input": {"dialogId": dialog_id, "content": f"Question {number}, briefly."}},
                )
                cpu.append((time.process_time() - started) * 1000)
                await generations.wait(uuid.UUID(sent["sendMessage"]["assistantMessage"]["id"]))
    return cpu


async def main(args: argparse.Namespace) -> None:
    async with scratch_database() as (_, database_url):
        cpu = await measure(database_url, args.messages)
    step = max(1, args.messages // 5)
    windows = [
        {
            "messages_before": 2 * start,  # each earlier send left a question and an answer
            "sends": len(cpu[start : start + step]),
            "cpu_ms_median": round(statistics.median(cpu[start : start + step]), 2),
        }
        for start in range(0, args.messages, step)
    ]
    result = {
        "benchmark": "send_cpu",
        "code": await asyncio.to_thread(_commit),
        "messages": args.messages,
        "windows": windows,
    }
    for window in windows:
        print(
            f"after {window['messages_before']:>4} messages: "
            f"{window['cpu_ms_median']:.2f} ms CPU per sendMessage (median of {window['sends']})"
        )
    if args.output:
        args.output.write_text(json.dumps(result, indent=2) + "\n")


def _commit() -> str:
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    )
    return done.stdout.strip()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100)
    parser.add_argument("--output", type=Path, default=RESULTS / "send_cpu.json")
    asyncio.run(main(parser.parse_args()))
