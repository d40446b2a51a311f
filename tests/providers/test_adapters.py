"""The real provider adapters (and the real SDKs under them) against fake upstreams on loopback.

Each adapter must stream the reply and its usage, send what the request asked for, map
every upstream failure onto the right ``ErrorKind`` with a key-free message, and keep
already streamed text when a stream breaks.
"""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import pytest_asyncio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from llm_gateway.providers.anthropic import AnthropicProvider
from llm_gateway.providers.base import (
    ChatMessage,
    ErrorKind,
    Finish,
    Provider,
    ProviderError,
    ProviderRequest,
    TextDelta,
    Usage,
)
from llm_gateway.providers.gigachat import GigaChatProvider
from llm_gateway.providers.openai import OpenAIProvider
from tests.fakes import (
    DEFAULT_REPLY,
    AnthropicFake,
    Cut,
    FakeUpstream,
    GigaChatFake,
    OpenAIFake,
    RecordedRequest,
    Scenario,
    fake_anthropic,
    fake_gigachat,
    fake_openai,
)
from tests.fakes.base import Frame, ScriptedStream
from tests.live import serve_asgi

SHORT_READ_TIMEOUT = 0.2
SYSTEM = "You are terse."
REQUEST = ProviderRequest(
    model="test-model",
    messages=[
        ChatMessage("system", SYSTEM),
        ChatMessage("user", "Hi"),
        ChatMessage("assistant", "Hello."),
        ChatMessage("user", "Count to three."),
    ],
    max_tokens=64,
    temperature=0.25,
    top_p=0.9,
    stop=["END"],
)
BARE_REQUEST = ProviderRequest(
    model="test-model", messages=[ChatMessage("user", "Hi")], max_tokens=16
)
PROVIDERS = ["openai", "anthropic", "gigachat"]


@dataclass
class Outcome:
    """What a consumer of ``stream()`` saw."""

    deltas: list[str]
    usage: list[Usage]
    error: ProviderError | None
    finishes: list[Finish] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(self.deltas)


async def consume(provider: Provider, request: ProviderRequest = REQUEST) -> Outcome:
    outcome = Outcome([], [], None)
    try:
        async for event in provider.stream(request):
            if isinstance(event, TextDelta):
                assert not outcome.usage, "text after usage"
                assert not outcome.finishes, "text after finish"
                outcome.deltas.append(event.text)
            elif isinstance(event, Finish):
                assert not outcome.usage, "finish after usage"
                outcome.finishes.append(event)
            else:
                assert isinstance(event, Usage), event
                outcome.usage.append(event)
    except ProviderError as exc:
        outcome.error = exc
    return outcome


def make_provider(fake: FakeUpstream, *, read_timeout: float = 10.0) -> Provider:
    if isinstance(fake, OpenAIFake):
        return OpenAIProvider(fake.api_key, fake.base_url, read_timeout=read_timeout)
    if isinstance(fake, AnthropicFake):
        return AnthropicProvider(fake.api_key, fake.base_url, read_timeout=read_timeout)
    assert isinstance(fake, GigaChatFake)
    return GigaChatProvider(
        fake.auth_key,
        fake.scope,
        fake.base_url,
        fake.auth_url,
        verify_ssl=False,  # plain http; skips loading a CA bundle per test
        read_timeout=read_timeout,
    )


def secret_of(fake: FakeUpstream) -> str:
    if isinstance(fake, OpenAIFake | AnthropicFake):
        return fake.api_key
    assert isinstance(fake, GigaChatFake)
    return fake.auth_key


# One fake per protocol for the whole module (starting and stopping uvicorn costs ~0.2 s),
# reset before every test. The OpenAI and Anthropic providers hold nothing but a connection
# pool, so they are shared too (building an SDK client loads a CA bundle: ~50 ms); GigaChat
# providers cache a token, so every test gets a fresh one.
pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fakes() -> AsyncIterator[dict[str, FakeUpstream]]:
    async with fake_openai() as openai, fake_anthropic() as anthropic, fake_gigachat() as giga:
        yield {"openai": openai, "anthropic": anthropic, "gigachat": giga}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared_providers(fakes: dict[str, FakeUpstream]) -> AsyncIterator[dict[str, Provider]]:
    providers = {name: make_provider(fakes[name]) for name in ("openai", "anthropic")}
    yield providers
    for provider in providers.values():
        await provider.aclose()


@dataclass
class Upstream:
    name: str
    fake: FakeUpstream
    provider: Provider


@asynccontextmanager
async def another_provider(
    fake: FakeUpstream, read_timeout: float = 10.0
) -> AsyncIterator[Provider]:
    provider = make_provider(fake, read_timeout=read_timeout)
    try:
        yield provider
    finally:
        await provider.aclose()


@asynccontextmanager
async def upstream_for(
    name: str, fakes: dict[str, FakeUpstream], shared: dict[str, Provider]
) -> AsyncIterator[Upstream]:
    fake = fakes[name]
    fake.reset()
    if name in shared:
        yield Upstream(name, fake, shared[name])
        return
    async with another_provider(fake) as provider:
        yield Upstream(name, fake, provider)


@pytest_asyncio.fixture(loop_scope="module", params=PROVIDERS)
async def upstream(
    request: pytest.FixtureRequest,
    fakes: dict[str, FakeUpstream],
    shared_providers: dict[str, Provider],
) -> AsyncIterator[Upstream]:
    async with upstream_for(request.param, fakes, shared_providers) as upstream:
        yield upstream


@pytest_asyncio.fixture(loop_scope="module", params=["openai", "anthropic"])
async def streams_errors(
    request: pytest.FixtureRequest,
    fakes: dict[str, FakeUpstream],
    shared_providers: dict[str, Provider],
) -> AsyncIterator[Upstream]:
    """The providers whose protocol has an error event inside a 200 stream."""
    async with upstream_for(request.param, fakes, shared_providers) as upstream:
        yield upstream


@pytest_asyncio.fixture(loop_scope="module")
async def openai_fake(fakes: dict[str, FakeUpstream]) -> OpenAIFake:
    fake = fakes["openai"]
    assert isinstance(fake, OpenAIFake)
    fake.reset()
    return fake


@pytest_asyncio.fixture(loop_scope="module")
async def anthropic_fake(fakes: dict[str, FakeUpstream]) -> AnthropicFake:
    fake = fakes["anthropic"]
    assert isinstance(fake, AnthropicFake)
    fake.reset()
    return fake


@pytest_asyncio.fixture(loop_scope="module")
async def gigachat_fake(fakes: dict[str, FakeUpstream]) -> GigaChatFake:
    fake = fakes["gigachat"]
    assert isinstance(fake, GigaChatFake)
    fake.reset()
    return fake


# --- streaming ---------------------------------------------------------------------------


async def test_streams_the_reply_in_order_then_usage(upstream: Upstream) -> None:
    upstream.fake.script(
        Scenario(text="One, two, three.", chunks=4, prompt_tokens=21, completion_tokens=5)
    )

    outcome = await consume(upstream.provider)

    assert outcome.error is None
    assert outcome.deltas == ["One,", " two", ", th", "ree."]
    assert [(u.prompt_tokens, u.completion_tokens) for u in outcome.usage] == [(21, 5)]


async def test_a_stream_without_usage_yields_no_usage(upstream: Upstream) -> None:
    upstream.fake.script(Scenario(text="No usage here.", usage=False))

    outcome = await consume(upstream.provider)

    assert outcome.error is None
    assert outcome.text == "No usage here."
    assert outcome.usage == []


async def test_one_provider_serves_consecutive_requests(upstream: Upstream) -> None:
    upstream.fake.script(Scenario(text="first"), Scenario(text="second"))

    first = await consume(upstream.provider)
    second = await consume(upstream.provider)

    assert (first.text, second.text) == ("first", "second")


async def test_closing_the_stream_early_hangs_up_on_the_upstream(upstream: Upstream) -> None:
    upstream.fake.script(Scenario(text="x" * 100, chunks=100, chunk_delay=0.05))
    stream = upstream.provider.stream(BARE_REQUEST)
    assert isinstance(stream, AsyncGenerator)

    first = await anext(stream)
    await stream.aclose()

    assert first == TextDelta("x")
    async with asyncio.timeout(5):
        await upstream.fake.wait_for_disconnect()
    assert upstream.fake.disconnects == 1


async def test_a_closed_provider_sends_nothing(upstream: Upstream) -> None:
    async with another_provider(upstream.fake) as provider:
        assert (await consume(provider)).error is None
        seen = len(upstream.fake.requests)

        await provider.aclose()
        outcome = await consume(provider)

    assert outcome.error is not None
    assert outcome.error.kind is ErrorKind.UNAVAILABLE
    assert len(upstream.fake.requests) == seen


# --- errors ------------------------------------------------------------------------------

STATUS_KINDS = [
    (400, ErrorKind.BAD_REQUEST),
    (401, ErrorKind.AUTH),
    (403, ErrorKind.AUTH),
    (404, ErrorKind.MODEL_NOT_FOUND),
    (413, ErrorKind.BAD_REQUEST),
    (422, ErrorKind.BAD_REQUEST),
    (429, ErrorKind.RATE_LIMITED),
    (500, ErrorKind.UNAVAILABLE),
    (503, ErrorKind.UNAVAILABLE),
    (529, ErrorKind.UNAVAILABLE),
]


@pytest.mark.parametrize(("status", "kind"), STATUS_KINDS)
async def test_an_error_status_maps_to_its_kind(
    upstream: Upstream, status: int, kind: ErrorKind
) -> None:
    upstream.fake.script(Scenario(status=status))

    outcome = await consume(upstream.provider)

    assert outcome.deltas == []
    assert outcome.error is not None
    assert outcome.error.kind is kind
    assert outcome.error.status == status
    assert secret_of(upstream.fake) not in outcome.error.message
    assert len(upstream.fake.chat_requests) == 1  # one attempt: retries are the service's


@pytest.mark.parametrize(
    ("scenario", "seconds"),
    [
        (Scenario(status=429, retry_after_ms=1500), 1.5),
        (Scenario(status=429, retry_after="7"), 7.0),
        (Scenario(status=429, retry_after="2", retry_after_ms=250), 0.25),
        (Scenario(status=429), None),
    ],
)
async def test_a_rate_limit_carries_the_retry_hint(
    upstream: Upstream, scenario: Scenario, seconds: float | None
) -> None:
    upstream.fake.script(scenario)

    outcome = await consume(upstream.provider)

    assert outcome.error is not None
    assert outcome.error.kind is ErrorKind.RATE_LIMITED
    assert outcome.error.retryable
    assert outcome.error.retry_after == seconds


async def test_error_messages_never_repeat_a_key(upstream: Upstream) -> None:
    key = secret_of(upstream.fake)
    leaky = f"Incorrect API key provided: {key}. Also seen: Bearer {key}, sk-live-a1b2c3d4e5f6."
    upstream.fake.script(Scenario(status=401, error_message=leaky))

    outcome = await consume(upstream.provider)

    assert outcome.error is not None
    assert outcome.error.kind is ErrorKind.AUTH
    assert not outcome.error.retryable
    assert "Incorrect API key provided" in outcome.error.message
    for fragment in (key, key[:12], key[-12:], "sk-live"):
        assert fragment not in outcome.error.message


async def test_long_error_bodies_are_shortened(upstream: Upstream) -> None:
    upstream.fake.script(Scenario(status=500, error_message="boom " * 2000))

    outcome = await consume(upstream.provider)

    assert outcome.error is not None
    assert outcome.error.kind is ErrorKind.UNAVAILABLE
    assert "boom boom" in outcome.error.message
    assert len(outcome.error.message) < 300


@pytest.mark.parametrize("cut", ["abort", "end"])
async def test_a_stream_cut_after_text_keeps_the_text_then_fails(
    upstream: Upstream, cut: Cut
) -> None:
    upstream.fake.script(Scenario(text="aaabbbcccddd", chunks=4, cut_after=2, cut=cut))

    outcome = await consume(upstream.provider)

    assert outcome.deltas == ["aaa", "bbb"]
    assert outcome.usage == []
    assert outcome.error is not None
    assert outcome.error.kind is ErrorKind.STREAM_CUT
    assert not outcome.error.retryable


async def test_a_stream_cut_before_any_text_is_retryable(upstream: Upstream) -> None:
    upstream.fake.script(Scenario(cut_after=0))

    outcome = await consume(upstream.provider)

    assert outcome.deltas == []
    assert outcome.error is not None
    assert outcome.error.kind is ErrorKind.UNAVAILABLE
    assert outcome.error.retryable


async def test_no_first_byte_within_the_read_timeout_is_a_timeout(upstream: Upstream) -> None:
    upstream.fake.script(Scenario(first_byte_delay=SHORT_READ_TIMEOUT * 5))

    async with another_provider(upstream.fake, SHORT_READ_TIMEOUT) as provider:
        outcome = await consume(provider)

    assert outcome.deltas == []
    assert outcome.error is not None
    assert outcome.error.kind is ErrorKind.TIMEOUT
    assert outcome.error.retryable


async def test_a_stall_after_text_is_a_cut(upstream: Upstream) -> None:
    upstream.fake.script(Scenario(text="abcd", chunks=2, chunk_delay=SHORT_READ_TIMEOUT * 5))

    async with another_provider(upstream.fake, SHORT_READ_TIMEOUT) as provider:
        outcome = await consume(provider)

    assert outcome.deltas == ["ab"]
    assert outcome.error is not None
    assert outcome.error.kind is ErrorKind.STREAM_CUT


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.parametrize("name", PROVIDERS)
async def test_connection_refused_is_unavailable(name: str) -> None:
    origin = f"http://127.0.0.1:{closed_port()}"
    providers: dict[str, Callable[[], Provider]] = {
        "openai": lambda: OpenAIProvider("sk-nobody-listens-0123456789", origin + "/v1"),
        "anthropic": lambda: AnthropicProvider("sk-ant-nobody-0123456789", origin),
        "gigachat": lambda: GigaChatProvider(
            "a2V5Cg==", "GIGACHAT_API_PERS", origin + "/api/v1", origin + "/api/v2/oauth"
        ),
    }
    provider = providers[name]()
    try:
        outcome = await consume(provider)
    finally:
        await provider.aclose()

    assert outcome.error is not None
    assert outcome.error.kind is ErrorKind.UNAVAILABLE
    assert outcome.error.retryable


# --- mid-stream error events (OpenAI error chunk, Anthropic ``event: error``) ---------------


@pytest.mark.parametrize(
    ("error_type", "kind"),
    [
        ("overloaded_error", ErrorKind.UNAVAILABLE),
        ("api_error", ErrorKind.UNAVAILABLE),
        ("server_error", ErrorKind.UNAVAILABLE),
        ("rate_limit_error", ErrorKind.RATE_LIMITED),
        ("invalid_request_error", ErrorKind.BAD_REQUEST),
    ],
)
async def test_an_error_event_before_text_is_classified_by_type(
    streams_errors: Upstream, error_type: str, kind: ErrorKind
) -> None:
    streams_errors.fake.script(
        Scenario(cut_after=0, cut="error", error_type=error_type, error_message="Overloaded")
    )

    outcome = await consume(streams_errors.provider)

    assert outcome.deltas == []
    assert outcome.error is not None
    assert outcome.error.kind is kind
    assert "Overloaded" in outcome.error.message


async def test_an_error_event_after_text_is_a_cut(streams_errors: Upstream) -> None:
    streams_errors.fake.script(
        Scenario(text="aabbcc", chunks=3, cut_after=1, cut="error", error_type="overloaded_error")
    )

    outcome = await consume(streams_errors.provider)

    assert outcome.deltas == ["aa"]
    assert outcome.error is not None
    assert outcome.error.kind is ErrorKind.STREAM_CUT


# --- OpenAI ------------------------------------------------------------------------------


@asynccontextmanager
async def openai_provider(fake: OpenAIFake) -> AsyncIterator[OpenAIProvider]:
    provider = OpenAIProvider(fake.api_key, fake.base_url)
    try:
        yield provider
    finally:
        await provider.aclose()


async def test_openai_sends_the_request_as_asked(openai_fake: OpenAIFake) -> None:
    async with openai_provider(openai_fake) as provider:
        await consume(provider)

    [sent] = openai_fake.chat_requests
    assert sent.headers["authorization"] == f"Bearer {openai_fake.api_key}"
    assert sent.json == {
        "model": "test-model",
        "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello."},
            {"role": "user", "content": "Count to three."},
        ],
        "max_tokens": 64,
        "temperature": 0.25,
        "top_p": 0.9,
        "stop": ["END"],
        "stream": True,
        "stream_options": {"include_usage": True},
    }


async def test_openai_leaves_unset_params_out(openai_fake: OpenAIFake) -> None:
    async with openai_provider(openai_fake) as provider:
        outcome = await consume(provider, BARE_REQUEST)

    assert outcome.error is None
    body = openai_fake.chat_requests[0].json
    assert body["max_tokens"] == 16
    assert not {"temperature", "top_p", "stop", "user"} & body.keys()


# --- OpenAI's event stream as bytes (the adapter reads it itself) -------------------------


class RawEventStreams:
    """An OpenAI-compatible endpoint that sends exactly the frames a test scripts."""

    def __init__(self) -> None:
        self.bodies: deque[list[Frame]] = deque()
        self.client_ports: list[int] = []
        self.app = Starlette(routes=[Route("/v1/chat/completions", self._chat, methods=["POST"])])

    async def _chat(self, request: Request) -> Response:
        await request.body()
        assert request.client is not None
        self.client_ports.append(request.client.port)
        return ScriptedStream(self.bodies.popleft())


@pytest_asyncio.fixture(loop_scope="module")
async def raw_openai() -> AsyncIterator[tuple[RawEventStreams, OpenAIProvider]]:
    streams = RawEventStreams()
    async with serve_asgi(streams.app) as server:
        provider = OpenAIProvider("sk-raw-0123456789abcdef", server.base_url + "/v1")
        try:
            yield streams, provider
        finally:
            await provider.aclose()


def event(data: Any) -> bytes:
    return f"data: {json.dumps(data)}\n\n".encode()


def text_chunk(content: str, index: int = 0) -> bytes:
    return event({"choices": [{"index": index, "delta": {"content": content}}]})


FINISH = event({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
USAGE = event({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2}})
DONE = b"data: [DONE]\n\n"


async def test_openai_reads_the_event_stream_as_the_format_allows(
    raw_openai: tuple[RawEventStreams, OpenAIProvider],
) -> None:
    streams, provider = raw_openai
    first = {"choices": [{"index": 0, "delta": {"content": "Hel"}, "finish_reason": None}]}
    streams.bodies.append(
        [
            Frame(b": keep-alive\r\n\r\n"),  # a comment, then an event without data
            Frame(f"event: message\r\nid: 7\r\ndata: {json.dumps(first)}\r".encode()),
            Frame(b"\n\r\n"),  # CRLF split across two reads
            Frame(b'data: {"choices": [{"index": 0,\ndata:  "delta": {"content": "lo"}}]}\n\n'),
            Frame(text_chunk("another choice", index=1)),
            Frame(FINISH + USAGE + DONE),
        ]
    )

    outcome = await consume(provider, BARE_REQUEST)

    assert outcome.error is None
    assert outcome.deltas == ["Hel", "lo"]
    assert outcome.usage == [Usage(3, 2)]


async def test_openai_reuses_its_connection_after_a_finished_stream(
    raw_openai: tuple[RawEventStreams, OpenAIProvider],
) -> None:
    streams, provider = raw_openai
    answer = [Frame(text_chunk("Hi") + FINISH + USAGE + DONE)]
    streams.bodies.extend([answer, answer])

    outcomes = [await consume(provider, BARE_REQUEST) for _ in range(2)]

    assert [o.text for o in outcomes] == ["Hi", "Hi"]
    assert len(set(streams.client_ports)) == 1


async def test_openai_does_not_wait_for_a_body_left_open_after_done(
    raw_openai: tuple[RawEventStreams, OpenAIProvider],
) -> None:
    streams, provider = raw_openai
    streams.bodies.append([Frame(text_chunk("Hi") + FINISH + DONE), Frame(b": late\n\n", 60)])

    async with asyncio.timeout(5):
        outcome = await consume(provider, BARE_REQUEST)

    assert outcome.error is None
    assert outcome.text == "Hi"


@pytest.mark.parametrize(
    ("body", "kind", "says"),
    [
        (b"data: {not json\n\n", ErrorKind.UNAVAILABLE, "malformed response"),
        (b"data: [1, 2]\n\n", ErrorKind.UNAVAILABLE, "malformed response"),
        (
            event({"error": {"type": "rate_limit_exceeded"}}),
            ErrorKind.RATE_LIMITED,
            "An error occurred during streaming",
        ),
    ],
)
async def test_openai_refuses_what_is_not_a_chunk(
    raw_openai: tuple[RawEventStreams, OpenAIProvider], body: bytes, kind: ErrorKind, says: str
) -> None:
    streams, provider = raw_openai
    streams.bodies.append([Frame(body), Frame(text_chunk("never read") + FINISH + DONE)])

    outcome = await consume(provider, BARE_REQUEST)

    assert outcome.deltas == []
    assert outcome.error is not None
    assert outcome.error.kind is kind
    assert says in outcome.error.message


# --- Anthropic ---------------------------------------------------------------------------


@asynccontextmanager
async def anthropic_provider(fake: AnthropicFake) -> AsyncIterator[AnthropicProvider]:
    provider = AnthropicProvider(fake.api_key, fake.base_url)
    try:
        yield provider
    finally:
        await provider.aclose()


async def test_anthropic_sends_the_request_as_asked(anthropic_fake: AnthropicFake) -> None:
    async with anthropic_provider(anthropic_fake) as provider:
        await consume(provider)

    [sent] = anthropic_fake.chat_requests
    key = anthropic_fake.api_key
    assert {sent.headers.get("x-api-key"), sent.headers.get("authorization")} & {
        key,
        f"Bearer {key}",
    }
    assert sent.headers["anthropic-version"]
    assert sent.json == {
        "model": "test-model",
        "system": SYSTEM,
        "messages": [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello."},
            {"role": "user", "content": "Count to three."},
        ],
        "max_tokens": 64,
        "temperature": 0.25,
        "top_p": 0.9,
        "stop_sequences": ["END"],
        "stream": True,
    }


async def test_anthropic_leaves_unset_params_out(anthropic_fake: AnthropicFake) -> None:
    async with anthropic_provider(anthropic_fake) as provider:
        outcome = await consume(provider, BARE_REQUEST)

    assert outcome.error is None
    body = anthropic_fake.chat_requests[0].json
    assert not {"system", "temperature", "top_p", "stop_sequences", "metadata"} & body.keys()


@pytest.mark.parametrize("header", ["x-api-key", "authorization"])
async def test_the_anthropic_fake_takes_the_key_in_either_header(
    anthropic_fake: AnthropicFake, header: str
) -> None:
    key = anthropic_fake.api_key
    body = {"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
    async with httpx.AsyncClient(base_url=anthropic_fake.url) as client:

        async def post(value: str) -> httpx.Response:
            headers = {header: value, "anthropic-version": "2023-06-01"}
            return await client.post("/v1/messages", json=body, headers=headers)

        good = await post(key if header == "x-api-key" else f"Bearer {key}")
        bad = await post("nope")

    assert good.status_code == 200
    assert good.json()["content"] == [{"type": "text", "text": DEFAULT_REPLY}]
    assert bad.status_code == 401
    assert bad.json()["error"]["type"] == "authentication_error"


# --- GigaChat ----------------------------------------------------------------------------


@asynccontextmanager
async def gigachat(
    fake: GigaChatFake, auth_key: str | None = None
) -> AsyncIterator[GigaChatProvider]:
    provider = GigaChatProvider(auth_key or fake.auth_key, fake.scope, fake.base_url, fake.auth_url)
    try:
        yield provider
    finally:
        await provider.aclose()


def bearer(request: RecordedRequest) -> str:
    return request.headers["authorization"].removeprefix("Bearer ")


async def test_gigachat_authenticates_then_sends_the_request_as_asked(
    gigachat_fake: GigaChatFake,
) -> None:
    fake = gigachat_fake
    async with gigachat(fake) as provider:
        outcome = await consume(provider)

    assert outcome.error is None
    [oauth] = fake.oauth_requests
    assert oauth.headers["authorization"] == f"Basic {fake.auth_key}"
    assert uuid.UUID(oauth.headers["rquid"])
    assert oauth.headers["content-type"].startswith("application/x-www-form-urlencoded")
    assert oauth.form == {"scope": fake.scope}
    [sent] = fake.chat_requests
    assert bearer(sent) in fake.tokens
    assert sent.json == {
        "model": "test-model",
        "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello."},
            {"role": "user", "content": "Count to three."},
        ],
        "max_tokens": 64,
        "temperature": 0.25,
        "top_p": 0.9,
        "stream": True,
    }


async def test_gigachat_reuses_its_token(gigachat_fake: GigaChatFake) -> None:
    fake = gigachat_fake
    async with gigachat(fake) as provider:
        first = await consume(provider)
        second = await consume(provider)

    assert (first.error, second.error) == (None, None)
    assert len(fake.oauth_requests) == 1
    assert bearer(fake.chat_requests[0]) == bearer(fake.chat_requests[1])


async def test_gigachat_renews_a_token_within_a_minute_of_expiry(
    gigachat_fake: GigaChatFake,
) -> None:
    fake = gigachat_fake
    fake.token_ttl_ms = 60_000  # expires_at is in ms; 60 s left is already due for renewal
    async with gigachat(fake) as provider:
        first = await consume(provider)
        second = await consume(provider)

    assert (first.error, second.error) == (None, None)
    assert len(fake.oauth_requests) == 2
    assert bearer(fake.chat_requests[0]) != bearer(fake.chat_requests[1])


async def test_gigachat_keeps_a_token_with_more_than_a_minute_left(
    gigachat_fake: GigaChatFake,
) -> None:
    gigachat_fake.token_ttl_ms = 65_000
    async with gigachat(gigachat_fake) as provider:
        await consume(provider)
        await consume(provider)

    assert len(gigachat_fake.oauth_requests) == 1


async def test_gigachat_reauthenticates_once_when_its_token_is_refused(
    gigachat_fake: GigaChatFake,
) -> None:
    fake = gigachat_fake
    async with gigachat(fake) as provider:
        await consume(provider)
        fake.revoke_tokens()
        outcome = await consume(provider)

    assert outcome.error is None
    assert outcome.text == DEFAULT_REPLY
    assert len(fake.oauth_requests) == 2
    first, stale, retried = fake.chat_requests
    assert bearer(stale) == bearer(first)
    assert bearer(retried) != bearer(stale)


async def test_gigachat_gives_up_after_one_reauthentication(gigachat_fake: GigaChatFake) -> None:
    fake = gigachat_fake
    async with gigachat(fake) as provider:
        await consume(provider)
        fake.script(Scenario(status=401), Scenario(status=401), Scenario(text="never"))
        outcome = await consume(provider)

    assert outcome.error is not None
    assert outcome.error.kind is ErrorKind.AUTH
    assert len(fake.oauth_requests) == 2
    assert len(fake.chat_requests) == 3
    assert fake.pending == 1


async def test_gigachat_with_a_wrong_key_is_an_auth_error_without_the_key(
    gigachat_fake: GigaChatFake,
) -> None:
    wrong = "d3JvbmctY2xpZW50Ondyb25nLXNlY3JldC0wMTIzNDU2Nzg5YWJjZGVm"
    async with gigachat(gigachat_fake, auth_key=wrong) as provider:
        outcome = await consume(provider)

    assert outcome.error is not None
    assert outcome.error.kind is ErrorKind.AUTH
    assert outcome.error.status == 401
    assert wrong not in outcome.error.message
    assert gigachat_fake.chat_requests == []


@pytest.mark.parametrize(
    ("status", "kind"), [(429, ErrorKind.RATE_LIMITED), (503, ErrorKind.UNAVAILABLE)]
)
async def test_gigachat_oauth_outages_are_retryable(
    gigachat_fake: GigaChatFake, status: int, kind: ErrorKind
) -> None:
    gigachat_fake.script_oauth(Scenario(status=status, retry_after="3"))
    async with gigachat(gigachat_fake) as provider:
        outcome = await consume(provider)

    assert outcome.error is not None
    assert outcome.error.kind is kind
    assert outcome.error.retryable
    assert outcome.error.retry_after == 3.0
    assert gigachat_fake.chat_requests == []
