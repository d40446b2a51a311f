"""Prometheus metrics: the scrape of ``llm-gateway serve`` agrees with the ledger exactly.

The end-to-end test runs the real command with two workers (one scrape adds both up) and
parses its endpoint with prometheus-client's own parser; the rest run the app in-process
and read its ``GatewayMetrics`` directly.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import re
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from sqlalchemy import func, select, update

from llm_gateway.app import create_app
from llm_gateway.db.engine import Database, make_engine
from llm_gateway.db.models import Reservation, TokenTransaction
from llm_gateway.observability.metrics import GatewayMetrics
from llm_gateway.observability.metrics_server import (
    MULTIPROC_DIR_VARIABLE,
    prepare_multiprocess_dir,
)
from llm_gateway.services.chat.generation.recovery import sweep_once
from llm_gateway.settings import Settings
from tests.api_support import api_settings, upstreams
from tests.chat_support import assert_exact, assert_exact_in, finished, new_dialog, send
from tests.conftest import make_settings
from tests.fakes import Scenario
from tests.live import LiveServer, gateway_process, graphql_socket
from tests.support import GraphQLClient, token

CHATS = 4
COMPLETIONS = 3
USER = 7

BALANCE_EVENTS = """subscription { balanceChanged { reason balance { balance } } }"""
SEND = """mutation($input: SendMessageInput!) {
  sendMessage(input: $input) { assistantMessage { id status } }
}"""
CREATE = """mutation { createDialog(input: {model: "mock"}) { id } }"""


# --- the real command, two workers, one scrape --------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Scrape:
    """One scrape of the endpoint, parsed with prometheus-client's parser."""

    def __init__(self, text: str) -> None:
        self.samples: list[Sample] = [
            sample for family in text_string_to_metric_families(text) for sample in family.samples
        ]

    def total(self, name: str, **labels: str) -> float:
        """The sum of ``name``'s samples whose labels include ``labels``."""
        return sum(
            sample.value
            for sample in self.samples
            if sample.name == name and labels.items() <= sample.labels.items()
        )

    def names(self) -> set[str]:
        return {sample.name for sample in self.samples}


async def _graphql(base_url: str, query: str, variables: dict[str, Any] | None = None) -> Any:
    # A client (and so a connection) per call: the workers share the port, any may answer.
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        response = await client.post(
            "/graphql",
            json={"query": query, "variables": variables or {}},
            headers={"Authorization": f"Bearer {token(USER)}"},
        )
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


async def _chat(server: LiveServer, index: int) -> None:
    dialog = (await _graphql(server.base_url, CREATE))["createDialog"]["id"]
    content = f"Question number {index}, please answer it."
    sent = await _graphql(
        server.base_url, SEND, {"input": {"dialogId": dialog, "content": content}}
    )
    assert sent["sendMessage"]["assistantMessage"]["status"] == "STREAMING"


async def _completion(server: LiveServer, stream: bool) -> None:
    body = {"model": "mock", "messages": [{"role": "user", "content": "Hi"}], "stream": stream}
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
        response = await client.post(
            "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {token(USER)}"}
        )
    assert response.status_code == 200, response.text
    if stream:  # the stream ends only once the answer was stored (and counted)
        assert response.text.rstrip().endswith("data: [DONE]")


async def _ledger(database_url: str) -> tuple[int, int, int, Decimal]:
    """Charged tokens, prompt and completion tokens, and cost of the usage rows."""
    db = Database(make_engine(database_url))
    try:
        await assert_exact_in(db, USER)
        async with db.read() as session:
            row = (
                await session.execute(
                    select(
                        func.coalesce(func.sum(TokenTransaction.amount), 0),
                        func.coalesce(func.sum(TokenTransaction.prompt_tokens), 0),
                        func.coalesce(func.sum(TokenTransaction.completion_tokens), 0),
                        func.coalesce(func.sum(TokenTransaction.cost_usd), 0),
                    ).where(TokenTransaction.kind == "usage")
                )
            ).one()
    finally:
        await db.dispose()
    amount, prompt, completion, cost = (value or 0 for value in row)
    return -int(amount), int(prompt), int(completion), Decimal(str(cost))


async def test_the_scrape_of_every_worker_agrees_with_the_ledger(
    database_url: str, redis_available: str, tmp_path: Path
) -> None:
    metrics_port = _free_port()
    async with (
        gateway_process(
            tmp_path / "gateway",
            DATABASE_URL=database_url,
            REDIS_URL=redis_available,
            WEB_CONCURRENCY="2",
            METRICS_PORT=str(metrics_port),
        ) as server,
        graphql_socket(server, {"Authorization": f"Bearer {token(USER)}"}) as socket_,
    ):
        # A usage notice follows each answer's count (both come after its commit).
        operation = await socket_.subscribe(BALANCE_EVENTS)
        events = socket_.events(operation)
        assert (await anext(events))["data"]["balanceChanged"]["reason"] == "current"
        await asyncio.gather(*(_chat(server, index) for index in range(CHATS)))
        usage = 0
        while usage < CHATS:
            usage += (await anext(events))["data"]["balanceChanged"]["reason"] == "usage"
        for index in range(COMPLETIONS):
            await _completion(server, stream=index % 2 == 1)
        async with httpx.AsyncClient(timeout=30) as client:
            response = await client.get(f"http://127.0.0.1:{metrics_port}/metrics")
        assert response.status_code == 200
        scrape = Scrape(response.text)
        # While the socket is open, its subscription is counted (by whichever worker has it).
        assert scrape.total("llm_gateway_subscriptions", subscription="balanceChanged") == 1

    charged, prompt, completion, cost = await _ledger(database_url)
    answers = CHATS + COMPLETIONS
    assert charged > 0
    assert scrape.total("llm_gateway_charged_tokens_total") == charged
    assert scrape.total("llm_gateway_charged_tokens_total", model="mock") == charged
    assert scrape.total("llm_gateway_cost_usd_total") == pytest.approx(float(cost))
    complete = {"model": "mock", "status": "complete"}
    assert scrape.total("llm_gateway_answers_total", source="chat", **complete) == CHATS
    assert scrape.total("llm_gateway_answers_total", source="api", **complete) == COMPLETIONS
    assert scrape.total("llm_gateway_answers_total") == answers
    mock = {"model": "mock", "provider": "mock"}
    for histogram in (
        "gen_ai_server_request_duration_seconds",
        "gen_ai_server_time_to_first_token_seconds",
        "gen_ai_server_time_per_output_token_seconds",
    ):
        assert scrape.total(f"{histogram}_count", **mock) == answers, histogram
    usage_name = "gen_ai_client_token_usage"
    assert scrape.total(f"{usage_name}_count", gen_ai_token_type="input", **mock) == answers
    assert scrape.total(f"{usage_name}_sum", gen_ai_token_type="input") == prompt
    assert scrape.total(f"{usage_name}_sum", gen_ai_token_type="output") == completion
    assert scrape.total("llm_gateway_overhead_seconds_count", source="chat") == CHATS
    assert scrape.total("llm_gateway_overhead_seconds_count", source="api") == COMPLETIONS
    assert scrape.total("llm_gateway_active_generations") == 0
    assert scrape.total("llm_gateway_upstream_errors_total") == 0
    ok = {"operation_type": "mutation", "outcome": "ok"}
    assert scrape.total("llm_gateway_graphql_operations_total", root_field="sendMessage", **ok) == (
        CHATS
    )
    assert "llm_gateway_db_pool_connections_in_use" in scrape.names()
    assert scrape.total("llm_gateway_holds_refused_total") == 0


# --- in-process ---------------------------------------------------------------------------


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[tuple[Any, GraphQLClient]]:
    app = create_app(settings)
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as http:
            yield app, GraphQLClient(http)


def metrics_of(app: Any) -> GatewayMetrics:
    metrics: GatewayMetrics = app.state.services.metrics
    return metrics


def total(metrics: GatewayMetrics, name: str) -> float:
    """The sum of every sample of ``name``, whatever its labels."""
    return sum(
        sample.value
        for family in metrics.registry.collect()
        for sample in family.samples
        if sample.name == name
    )


async def test_refused_holds_are_counted_by_reason_and_answer_nothing(database_url: str) -> None:
    async with serving(make_settings(database_url, initial_token_balance=0)) as (app, gql):
        dialog_id = await new_dialog(gql, user=USER, model="mock")
        assert (await send(gql, dialog_id, user=USER)).codes == ["INSUFFICIENT_BALANCE"]
        response = await gql.http.post(
            "/v1/chat/completions",
            json={"model": "mock", "messages": [{"role": "user", "content": "Hi"}]},
            headers={"Authorization": f"Bearer {token(USER)}"},
        )
        assert response.status_code == 402, response.text
        metrics = metrics_of(app)
        assert metrics.sample("llm_gateway_holds_refused_total", reason="insufficient_balance") == 2
        assert total(metrics, "llm_gateway_answers_total") == 0


async def test_upstream_errors_and_retries_are_counted_and_charges_match(
    database_url: str,
) -> None:
    async with upstreams() as fakes, serving(api_settings(database_url, fakes)) as (app, gql):
        fakes.openai.script(
            Scenario(status=429, retry_after_ms=1), Scenario(text="Fine."), Scenario(status=401)
        )
        for _ in range(2):
            dialog_id = await new_dialog(gql, user=USER, model="gpt-4-turbo")
            sent = (await send(gql, dialog_id, user=USER)).ok()["sendMessage"]
            await finished(app, sent["assistantMessage"]["id"])
        metrics = metrics_of(app)
        openai = {"provider": "openai"}
        assert (
            metrics.sample("llm_gateway_upstream_errors_total", kind="rate_limited", **openai) == 1
        )
        assert metrics.sample("llm_gateway_upstream_errors_total", kind="auth", **openai) == 1
        assert metrics.sample("llm_gateway_upstream_retries_total", **openai) == 1
        model = {"model": "gpt-4-turbo", "source": "chat"}
        assert metrics.sample("llm_gateway_answers_total", status="complete", **model) == 1
        assert metrics.sample("llm_gateway_answers_total", status="failed", **model) == 1
        state = await assert_exact(app, USER)
        [usage] = state.usage_rows
        charged = metrics.sample("llm_gateway_charged_tokens_total", model="gpt-4-turbo")
        assert charged == -usage.amount
        # A failure before any output is neither timed to a first token nor charged.
        timed = {"model": "gpt-4-turbo", "provider": "openai"}
        assert metrics.sample("gen_ai_server_time_to_first_token_seconds_count", **timed) == 1
        assert metrics.sample("gen_ai_server_request_duration_seconds_count", **timed) == 2


async def test_an_answer_the_sweeper_ends_is_counted_once(database_url: str) -> None:
    async with upstreams() as fakes, serving(api_settings(database_url, fakes)) as (app, gql):
        fakes.openai.script(Scenario(text="word " * 40, chunks=40, chunk_delay=0.05))
        dialog_id = await new_dialog(gql, user=USER, model="gpt-4-turbo")
        sent = (await send(gql, dialog_id, user=USER)).ok()["sendMessage"]
        # Its process "dies": the lease lapses while the answer still streams.
        db = app.state.services.db
        async with db.transaction() as session:
            past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
            await session.execute(update(Reservation).values(expires_at=past))
        metrics = metrics_of(app)
        assert await sweep_once(db, app.state.services.broker, metrics) == 1
        answer = await finished(app, sent["assistantMessage"]["id"])  # its own end: too late
        assert answer.status == "interrupted"
        chat = {"model": "gpt-4-turbo", "source": "chat"}
        assert metrics.sample("llm_gateway_answers_total", status="interrupted", **chat) == 1
        assert total(metrics, "llm_gateway_answers_total") == 1  # not again by its task
        state = await assert_exact(app, USER)
        charged = metrics.sample("llm_gateway_charged_tokens_total", model="gpt-4-turbo")
        assert charged == -sum(row.amount for row in state.usage_rows)


async def test_graphql_operations_are_counted_by_root_field_never_by_name(
    database_url: str,
) -> None:
    async with serving(make_settings(database_url)) as (app, gql):
        assert (await gql("query AnyNameAtAll { me { userId } }", user=USER)).ok()
        assert (await gql("{ me { userId } }", user=None)).codes == ["UNAUTHENTICATED"]
        assert (await gql("{ noSuchField }", user=USER)).errors
        assert (await gql("{ me {", user=USER)).errors
        metrics = metrics_of(app)
        query = {"operation_type": "query", "root_field": "me"}
        assert metrics.sample("llm_gateway_graphql_operations_total", outcome="ok", **query) == 1
        assert metrics.sample("llm_gateway_graphql_operations_total", outcome="error", **query) == 1
        unknown = {"operation_type": "query", "root_field": "unknown", "outcome": "error"}
        assert metrics.sample("llm_gateway_graphql_operations_total", **unknown) == 1
        assert "AnyNameAtAll" not in metrics.exposition()
        assert "noSuchField" not in metrics.exposition()


async def test_the_pool_gauge_follows_checked_out_connections(database_url: str) -> None:
    # An engine of its own: the app's background tasks borrow connections at any time.
    metrics, engine = GatewayMetrics(), make_engine(database_url)
    metrics.watch_pool(engine)
    db = Database(engine)
    try:
        async with db.read() as session, db.transaction() as other:
            await other.connection()
            await session.connection()
            assert metrics.sample("llm_gateway_db_pool_connections_in_use") == 2
        assert metrics.sample("llm_gateway_db_pool_connections_in_use") == 0
    finally:
        await db.dispose()


# --- the multiprocess directory -------------------------------------------------------------


def test_the_operators_directory_is_cleared_of_an_earlier_runs_values(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    directory = tmp_path / "metrics"
    directory.mkdir()
    (directory / "counter_123.db").write_bytes(b"stale")
    (directory / "keep.txt").write_text("not ours")
    monkeypatch.setenv(MULTIPROC_DIR_VARIABLE, str(directory))
    settings = make_settings("sqlite+aiosqlite:///unused.sqlite3", metrics_port=9464)
    assert prepare_multiprocess_dir(settings) == directory
    assert sorted(path.name for path in directory.iterdir()) == ["keep.txt"]


def test_without_a_metrics_port_nothing_is_prepared(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MULTIPROC_DIR_VARIABLE, raising=False)
    assert prepare_multiprocess_dir(make_settings("sqlite+aiosqlite:///unused.sqlite3")) is None
    assert MULTIPROC_DIR_VARIABLE not in os.environ


def test_preparing_after_prometheus_client_was_imported_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(MULTIPROC_DIR_VARIABLE, raising=False)  # this process imported it
    settings = make_settings("sqlite+aiosqlite:///unused.sqlite3", metrics_port=9464)
    with pytest.raises(RuntimeError, match="PROMETHEUS_MULTIPROC_DIR"):
        prepare_multiprocess_dir(settings)


def test_an_empty_metrics_port_means_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METRICS_PORT", "")
    assert Settings(_env_file=None).metrics_port is None  # type: ignore[call-arg]
    monkeypatch.setenv("METRICS_PORT", "9464")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert (settings.metrics_port, settings.metrics_host) == (9464, "127.0.0.1")


# --- the Grafana dashboard ------------------------------------------------------------------

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "llm-gateway.json"


def test_the_dashboard_charts_every_metric_and_only_real_ones() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    expressions = [
        target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])
    ]
    charted = {
        re.sub(r"_(bucket|sum|count|total)$", "", name)
        for expr in expressions
        for name in re.findall(r"\b((?:gen_ai|llm_gateway)_\w+)\{", expr)  # selectors, not labels
    }
    defined = {family.name for family in GatewayMetrics().registry.collect()}
    assert charted == defined
