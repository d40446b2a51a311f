"""The OpenAI fake from ``tests.fakes`` as a process of its own, with one fixed behaviour.

    .venv/bin/python -m benchmarks.fake_upstream [--first-token-ms 50] [--tokens 100]
                                                 [--token-interval-ms 10]

Binds a free port on 127.0.0.1, prints ``{"port": N}`` on one line, then serves
``POST /v1/chat/completions`` under uvicorn (uvloop, httptools) until SIGTERM. Every
request gets the same ``Scenario``: the response's first byte after ``first-token-ms``,
then ``tokens`` text chunks, ``token-interval-ms`` apart. Requests are not recorded (a
benchmark sends thousands).
"""

from __future__ import annotations

import argparse
import json
import socket

import uvicorn
from starlette.requests import Request

from tests.fakes import OpenAIFake, RecordedRequest, Scenario

TOKEN_TEXT = "tok "


def scenario(first_token_ms: float, tokens: int, token_interval_ms: float) -> Scenario:
    """The fixed answer: ``tokens`` chunks of ``TOKEN_TEXT``, as many completion tokens."""
    return Scenario(
        text=TOKEN_TEXT * tokens,
        chunks=tokens,
        first_byte_delay=first_token_ms / 1000,
        chunk_delay=token_interval_ms / 1000,
        prompt_tokens=12,
        completion_tokens=tokens,
    )


class UnrecordedOpenAIFake(OpenAIFake):
    """Answers like the test fake but keeps no request log."""

    async def record(self, request: Request) -> RecordedRequest:
        recorded = await super().record(request)
        self.requests.clear()
        return recorded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--first-token-ms", type=float, default=50.0)
    parser.add_argument("--tokens", type=int, default=100)
    parser.add_argument("--token-interval-ms", type=float, default=10.0)
    args = parser.parse_args()
    fake = UnrecordedOpenAIFake()
    fake.default = scenario(args.first_token_ms, args.tokens, args.token_interval_ms)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    print(json.dumps({"port": sock.getsockname()[1]}), flush=True)
    config = uvicorn.Config(
        fake.app,
        log_level="warning",
        access_log=False,
        loop="uvloop",
        http="httptools",
        lifespan="off",
        backlog=4096,
    )
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
