"""The gateway's Prometheus metrics: one ``GatewayMetrics`` per process, built by the lifespan.

Names follow the OpenTelemetry GenAI semantic conventions where one exists (``gen_ai_*``,
written the Prometheus way: dots become underscores, the unit a suffix), ``llm_gateway_*``
otherwise. No label names a user, a dialog, a key or anything a client chooses: every label
value comes from a bounded set (catalog models, providers, statuses, the schema's fields).

No metric object exists at import time: each ``GatewayMetrics`` registers its own metrics in
a registry of its own, so every app a test builds starts from zero and reads its values back
with ``sample``. Under ``llm-gateway serve`` with ``METRICS_PORT``, ``PROMETHEUS_MULTIPROC_DIR``
is set before prometheus-client is first imported (``metrics_server``): every value is then
also written to a file of that directory, one per process, and the serve process's scrape
endpoint adds up every worker's. That is also why gauges are only ever incremented,
decremented or set here (no ``set_function``, no custom collector) and each names how the
processes' values combine (``livesum``: the sum over the live processes). One process must
build one ``GatewayMetrics`` only: two would each keep their own idea of the same files.

Recording is cheap and per answer, never per token: a few counter increments when an answer
ends, one observation when it reaches the provider.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

# OpenTelemetry's advisory buckets (GenAI semantic conventions), in seconds or tokens.
TTFT_BUCKETS = (
    *(0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0),
    *(20.0, 60.0),  # beyond OpenTelemetry's: reasoning models think before their first token
)
DURATION_BUCKETS = tuple(0.01 * 2**power for power in range(15))  # 0.01, 0.02, ... 163.84
PER_TOKEN_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5)
TOKEN_BUCKETS = tuple(float(4**power) for power in range(14))  # 1, 4, 16, ... 67,108,864
OVERHEAD_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5)

SOURCES = ("chat", "api")
"""Where an answer came from: a GraphQL ``sendMessage``/``regenerate``, or ``/v1``."""


@dataclass(frozen=True, slots=True)
class AnswerRecord:
    """One answer that ended, exactly as the unit of work that committed its end stored it.

    ``input_tokens``/``output_tokens`` are set when the hold was settled (a ``usage`` row
    was written, ``charged_tokens`` and ``cost_usd`` being its amounts), None when it was
    released; the cache's reads and writes are parts of the input, reasoning part of the
    output (README: prompt caching). Timings are None for an answer the sweeper ended
    (its process is gone).
    """

    source: str
    model: str
    provider: str
    status: str
    charged_tokens: int = 0
    cost_usd: Decimal = Decimal(0)
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    ttft_ms: int | None = None
    total_ms: int | None = None


class GatewayMetrics:
    """Every metric the gateway records (README, "Metrics"), and how each is recorded."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        model = ("model", "provider")
        self._ttft = Histogram(
            "gen_ai_server_time_to_first_token_seconds",
            "From the start of an answer's generation (the provider call) to its first token.",
            model,
            buckets=TTFT_BUCKETS,
            registry=r,
        )
        self._duration = Histogram(
            "gen_ai_server_request_duration_seconds",
            "From the start of an answer's generation (the provider call) to its end.",
            model,
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self._per_token = Histogram(
            "gen_ai_server_time_per_output_token_seconds",
            "Time per output token after the first, of completed answers.",
            model,
            buckets=PER_TOKEN_BUCKETS,
            registry=r,
        )
        self._tokens = Histogram(
            "gen_ai_client_token_usage",
            "Tokens of a settled answer, by gen_ai_token_type: input (prompt) or output.",
            (*model, "gen_ai_token_type"),
            buckets=TOKEN_BUCKETS,
            registry=r,
        )
        self._token_parts = Counter(
            "llm_gateway_token_parts",
            "Parts of settled answers' tokens by gen_ai_token_type: cache_read and "
            "cache_creation (input read from and written to the provider's prompt cache, "
            "counted in gen_ai_client_token_usage's input too), reasoning (of the output).",
            (*model, "gen_ai_token_type"),
            registry=r,
        )
        self._answers = Counter(
            "llm_gateway_answers",
            "Answers that ended, by model, final status and source (chat or api).",
            ("model", "status", "source"),
            registry=r,
        )
        self._charged = Counter(
            "llm_gateway_charged_tokens",
            "Tokens taken from balances: the sum of the ledger's usage rows.",
            ("model",),
            registry=r,
        )
        self._cost = Counter(
            "llm_gateway_cost_usd",
            "What the settled answers cost at the catalog's USD prices.",
            ("model",),
            registry=r,
        )
        self._refused = Counter(
            "llm_gateway_holds_refused",
            "Sends refused before any provider call: insufficient_balance or quota_exceeded.",
            ("reason",),
            registry=r,
        )
        self._upstream_errors = Counter(
            "llm_gateway_upstream_errors",
            "Errors of provider calls, by provider and kind (retried ones included).",
            ("provider", "kind"),
            registry=r,
        )
        self._retries = Counter(
            "llm_gateway_upstream_retries",
            "Provider calls retried before the first token.",
            ("provider",),
            registry=r,
        )
        self._active = Gauge(
            "llm_gateway_active_generations",
            "Answers being generated now.",
            ("source",),
            multiprocess_mode="livesum",
            registry=r,
        )
        self._subscriptions = Gauge(
            "llm_gateway_subscriptions",
            "Open GraphQL subscriptions, by root field.",
            ("subscription",),
            multiprocess_mode="livesum",
            registry=r,
        )
        self._overhead = Histogram(
            "llm_gateway_overhead_seconds",
            "Time the gateway adds before calling the provider: from the request (the "
            "sendMessage resolver, the /v1 route) to the provider call.",
            ("source",),
            buckets=OVERHEAD_BUCKETS,
            registry=r,
        )
        self._operations = Counter(
            "llm_gateway_graphql_operations",
            "GraphQL operations by type, root field and outcome (ok, error, cancelled).",
            ("operation_type", "root_field", "outcome"),
            registry=r,
        )
        self._pool = Gauge(
            "llm_gateway_db_pool_connections_in_use",
            "Database connections checked out of the pool now.",
            multiprocess_mode="livesum",
            registry=r,
        )
        for source in SOURCES:  # shown as 0 before the first answer, not as missing
            self._active.labels(source)

    # -- answers ---------------------------------------------------------------------------

    def answer_ended(self, answer: AnswerRecord) -> None:
        """Count an answer whose end was committed (call once per answer, after the commit)."""
        self._answers.labels(answer.model, answer.status, answer.source).inc()
        if answer.input_tokens is not None and answer.output_tokens is not None:
            self._charged.labels(answer.model).inc(answer.charged_tokens)
            self._cost.labels(answer.model).inc(float(answer.cost_usd))
            tokens = self._tokens
            tokens.labels(answer.model, answer.provider, "input").observe(answer.input_tokens)
            tokens.labels(answer.model, answer.provider, "output").observe(answer.output_tokens)
            parts = self._token_parts
            for kind, count in (
                ("cache_read", answer.cache_read_tokens),
                ("cache_creation", answer.cache_write_tokens),
                ("reasoning", answer.reasoning_tokens),
            ):
                parts.labels(answer.model, answer.provider, kind).inc(count)
        if answer.total_ms is None:
            return
        labels = (answer.model, answer.provider)
        self._duration.labels(*labels).observe(answer.total_ms / 1000)
        if answer.ttft_ms is None:
            return
        self._ttft.labels(*labels).observe(answer.ttft_ms / 1000)
        after_first = (answer.output_tokens or 0) - 1
        if answer.status == "complete" and after_first > 0:
            per_token = (answer.total_ms - answer.ttft_ms) / 1000 / after_first
            self._per_token.labels(*labels).observe(max(per_token, 0.0))

    def hold_refused(self, code: str) -> None:
        """A send refused for money (the refusal's error code, e.g. INSUFFICIENT_BALANCE)."""
        self._refused.labels(code.lower()).inc()

    # -- the provider call -------------------------------------------------------------------

    def upstream_error(self, provider: str, kind: str) -> None:
        self._upstream_errors.labels(provider, kind).inc()

    def upstream_retry(self, provider: str) -> None:
        self._retries.labels(provider).inc()

    def overhead(self, source: str, seconds: float) -> None:
        self._overhead.labels(source).observe(max(seconds, 0.0))

    @contextlib.contextmanager
    def generating(self, source: str) -> Iterator[None]:
        """Counted as an active generation while the block runs."""
        gauge = self._active.labels(source)
        gauge.inc()
        try:
            yield
        finally:
            gauge.dec()

    # -- GraphQL and the database ------------------------------------------------------------

    @contextlib.contextmanager
    def subscribed(self, name: str) -> Iterator[None]:
        """Counted as an open subscription while the block runs."""
        gauge = self._subscriptions.labels(name)
        gauge.inc()
        try:
            yield
        finally:
            gauge.dec()

    def graphql_operation(self, operation_type: str, root_field: str, outcome: str) -> None:
        self._operations.labels(operation_type, root_field, outcome).inc()

    def watch_pool(self, engine: AsyncEngine) -> None:
        """Follow the connections ``engine``'s pool has checked out.

        Listens after the engine's own checkout listener: a connection that one discards
        (the server closed it) never counted, and the pool retries the checkout.
        """
        gauge = self._pool

        def checked_out(*_args: Any) -> None:
            gauge.inc()

        def checked_in(*_args: Any) -> None:
            gauge.dec()

        event.listen(engine.sync_engine.pool, "checkout", checked_out)
        event.listen(engine.sync_engine.pool, "checkin", checked_in)

    # -- reading -----------------------------------------------------------------------------

    def sample(self, name: str, **labels: str) -> float:
        """One value of this process's metrics (0 when never recorded), for tests."""
        return self.registry.get_sample_value(name, labels) or 0.0

    def exposition(self) -> str:
        """This process's metrics in the Prometheus text format."""
        return generate_latest(self.registry).decode()
