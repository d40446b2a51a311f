"""Open-loop chat load: the frontend's flow through the gateway, and a direct client (the floor).

A gateway chat is what the frontend does: open a websocket (``graphql-transport-ws``,
``connection_init`` with the user's token), subscribe to ``messageEvents`` of the dialog,
then POST ``sendMessage`` and read the subscription until its terminal event. The socket
is opened ``LEAD_SECONDS`` before the chat is due, so the POST itself leaves on schedule;
time to first token (TTFT) runs from the POST to the first ``MessageDelta``, total time to
``MessageCompleted``. A direct chat streams the same answer from the fake upstream with the
OpenAI SDK: TTFT to the first content chunk, total to the end of the stream.

Chats start at fixed intervals whatever the earlier ones are doing (open loop), each
bounded by ``CHAT_TIMEOUT_SECONDS``.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import openai
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

GRAPHQL_TRANSPORT_WS = Subprotocol("graphql-transport-ws")
LEAD_SECONDS = 0.5
CHAT_TIMEOUT_SECONDS = 30.0
SETTLE_SECONDS = 1.5
"""The pause after a phase, so the next starts on a quiet gateway."""
WARM_SECONDS = 1.5
"""Completions in the first WARM_SECONDS of a phase are left out of its throughput."""

PROMPT = "Tell me something in about a hundred tokens."
EVENTS = """subscription($dialogId: UUID!) {
  messageEvents(dialogId: $dialogId) {
    __typename
    ... on MessageStarted { message { id status } }
    ... on MessageDelta { messageId seq text }
    ... on MessageCompleted {
      message { id content modelName }
      usage { promptTokens completionTokens chargedTokens costUsd }
      balance { balance reserved available }
    }
    ... on MessageFailed { messageId code errorMessage final { status content chargedTokens } }
  }
}"""
SEND = (
    "mutation($input: SendMessageInput!) { sendMessage(input: $input) "
    "{ userMessage { id status } assistantMessage { id status } } }"
)


@dataclass(frozen=True, slots=True)
class ChatUser:
    """One chat's own user, token and (pre-created, empty) dialog."""

    user_id: int
    token: str
    dialog_id: str


@dataclass(slots=True)
class Outcome:
    """One chat, in event-loop time (seconds)."""

    due: float
    sent: float | None = None
    posted: float | None = None  # the sendMessage response arrived
    first: float | None = None
    done: float | None = None
    error: str | None = None
    deltas: int = 0  # delta events (gateway) or content chunks (direct) received


@dataclass(frozen=True, slots=True)
class GatewayTarget:
    ws_url: str
    http: httpx.AsyncClient
    expected_text: str
    compression: str | None = "deflate"
    """``"deflate"`` offers permessage-deflate as browsers do; ``None`` offers nothing."""


async def _sleep_until(when: float) -> None:
    delay = when - asyncio.get_running_loop().time()
    if delay > 0:
        await asyncio.sleep(delay)


async def gateway_chat(target: GatewayTarget, user: ChatUser, due: float) -> Outcome:
    """The frontend's flow for one chat; every failure is recorded, none raised."""
    loop = asyncio.get_running_loop()
    outcome = Outcome(due)
    post: asyncio.Task[httpx.Response] | None = None
    try:
        async with asyncio.timeout_at(due + CHAT_TIMEOUT_SECONDS):
            await _sleep_until(due - LEAD_SECONDS)
            async with connect(
                target.ws_url,
                subprotocols=[GRAPHQL_TRANSPORT_WS],
                open_timeout=None,
                compression=target.compression,
            ) as ws:
                auth = {"Authorization": f"Bearer {user.token}"}
                await ws.send(json.dumps({"type": "connection_init", "payload": auth}))
                ack = json.loads(await ws.recv())
                if ack.get("type") != "connection_ack":
                    outcome.error = f"no ack: {ack.get('type')}"
                    return outcome
                subscribe = {"query": EVENTS, "variables": {"dialogId": user.dialog_id}}
                await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": subscribe}))
                await _sleep_until(due)
                outcome.sent = loop.time()
                variables = {"input": {"dialogId": user.dialog_id, "content": PROMPT}}
                post = asyncio.create_task(
                    target.http.post(
                        "/graphql", json={"query": SEND, "variables": variables}, headers=auth
                    )
                )
                post.add_done_callback(lambda _: setattr(outcome, "posted", loop.time()))
                parts: list[str] = []
                async for raw in ws:
                    message = json.loads(raw)
                    kind = message.get("type")
                    if kind == "ping":
                        await ws.send(json.dumps({"type": "pong"}))
                        continue
                    if kind != "next" or message["payload"].get("errors"):
                        outcome.error = f"unexpected {kind}: {str(message.get('payload'))[:120]}"
                        break
                    event = message["payload"]["data"]["messageEvents"]
                    name = event["__typename"]
                    if name == "MessageDelta":
                        if outcome.first is None:
                            outcome.first = loop.time()
                        parts.append(event["text"])
                        outcome.deltas += 1
                    elif name == "MessageCompleted":
                        outcome.done = loop.time()
                        if "".join(parts) != target.expected_text:
                            outcome.error = "wrong text"
                        break
                    elif name == "MessageFailed":
                        outcome.error = f"failed: {event['code']}"
                        break
                else:
                    outcome.error = "socket closed"
                response = await post
                body = response.json() if response.status_code == 200 else {}
                if outcome.error is None and (response.status_code != 200 or body.get("errors")):
                    outcome.error = f"sendMessage: {response.status_code} {body.get('errors')}"
    except TimeoutError:
        outcome.error = "timeout"
    except Exception as exc:
        outcome.error = type(exc).__name__
    finally:
        if post is not None and not post.done():
            post.cancel()
    if outcome.error is not None:
        outcome.done = None
    return outcome


async def direct_chat(client: openai.AsyncOpenAI, model: str, expected: str, due: float) -> Outcome:
    """The floor: the same answer straight from the fake upstream, as the gateway asks it."""
    loop = asyncio.get_running_loop()
    outcome = Outcome(due)
    try:
        async with asyncio.timeout_at(due + CHAT_TIMEOUT_SECONDS):
            await _sleep_until(due)
            outcome.sent = loop.time()
            stream = await client.chat.completions.create(
                model=model,
                messages=[{"role": "user", "content": PROMPT}],
                max_tokens=4096,
                stream=True,
                stream_options={"include_usage": True},
            )
            parts: list[str] = []
            async with stream:
                async for chunk in stream:
                    for choice in chunk.choices:
                        if choice.delta is not None and choice.delta.content:
                            if outcome.first is None:
                                outcome.first = loop.time()
                            parts.append(choice.delta.content)
                            outcome.deltas += 1
            outcome.done = loop.time()
            if "".join(parts) != expected:
                outcome.error = "wrong text"
    except TimeoutError:
        outcome.error = "timeout"
    except Exception as exc:
        outcome.error = type(exc).__name__
    if outcome.error is not None:
        outcome.done = None
    return outcome


Chat = Callable[[int, float], Coroutine[Any, Any, Outcome]]
"""Starts chat number ``i``, due at loop time ``due``."""


async def open_loop(chat: Chat, rate: float, seconds: float) -> tuple[float, list[Outcome]]:
    """Start chat ``i`` at ``start + i / rate`` for ``seconds``; returns (start, outcomes)."""
    loop = asyncio.get_running_loop()
    start = loop.time() + LEAD_SECONDS + 0.1
    count = max(1, round(rate * seconds))
    tasks = [asyncio.create_task(chat(i, start + i / rate)) for i in range(count)]
    return start, list(await asyncio.gather(*tasks))


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of sorted values."""
    if not values:
        return math.nan
    return values[max(0, math.ceil(q / 100 * len(values)) - 1)]


@dataclass(slots=True)
class PhaseStats:
    chats: int
    completed: int
    errors: dict[str, int]
    ttft_ms: dict[str, float]
    total_ms: dict[str, float]
    send_message_ms: dict[str, float]
    start_lag_ms: dict[str, float]
    throughput: float
    deltas_per_chat: float
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def error_rate(self) -> float:
        return (self.chats - self.completed) / self.chats if self.chats else 0.0


def _spread(values: list[float]) -> dict[str, float]:
    values.sort()
    return {f"p{q}": round(percentile(values, q) * 1000, 2) for q in (50, 95, 99)} | {
        "max": round(values[-1] * 1000, 2) if values else math.nan
    }


def summarize(start: float, seconds: float, outcomes: list[Outcome]) -> PhaseStats:
    ok = [o for o in outcomes if o.error is None and o.sent and o.first and o.done]
    window_end = start + seconds
    in_window = [o for o in ok if o.done and start + WARM_SECONDS <= o.done < window_end]
    return PhaseStats(
        chats=len(outcomes),
        completed=len(ok),
        errors=dict(Counter(o.error for o in outcomes if o.error is not None)),
        ttft_ms=_spread([o.first - o.sent for o in ok if o.first and o.sent]),
        total_ms=_spread([o.done - o.sent for o in ok if o.done and o.sent]),
        send_message_ms=_spread([o.posted - o.sent for o in ok if o.posted and o.sent]),
        start_lag_ms=_spread([o.sent - o.due for o in outcomes if o.sent is not None]),
        throughput=round(len(in_window) / (seconds - WARM_SECONDS), 1),
        deltas_per_chat=round(sum(o.deltas for o in ok) / len(ok), 1) if ok else math.nan,
    )


class Users:
    """Hands out pre-made users; each chat takes its own."""

    def __init__(self, users: list[ChatUser]) -> None:
        self._users: Iterator[ChatUser] = iter(users)

    def take(self, count: int) -> list[ChatUser]:
        return [next(self._users) for _ in range(count)]


def gateway_chats(target: GatewayTarget, users: list[ChatUser]) -> Chat:
    def chat(i: int, due: float) -> Coroutine[Any, Any, Outcome]:
        return gateway_chat(target, users[i], due)

    return chat


def direct_chats(client: openai.AsyncOpenAI, model: str, expected: str) -> Chat:
    def chat(_: int, due: float) -> Coroutine[Any, Any, Outcome]:
        return direct_chat(client, model, expected, due)

    return chat
