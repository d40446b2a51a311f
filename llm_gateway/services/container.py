"""The long-lived parts a process builds once in the app's lifespan and hands down."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

from redis.asyncio import Redis

from llm_gateway.auth import TokenVerifier
from llm_gateway.db.engine import Database
from llm_gateway.observability.metrics import GatewayMetrics
from llm_gateway.services.chat.generation.runner import GenerationManager
from llm_gateway.services.money.api_keys import ApiKeyAuthenticator
from llm_gateway.services.money.balances import MoneyPolicy
from llm_gateway.services.money.rate_limit import RateLimiter
from llm_gateway.services.plumbing.broker import Broker
from llm_gateway.services.plumbing.health import Intake
from llm_gateway.services.staff.runtime_settings import Cipher, Limits
from llm_gateway.settings import Settings


@dataclass(slots=True)
class Services:
    settings: Settings
    db: Database
    verifier: TokenVerifier
    broker: Broker
    policy: MoneyPolicy
    instance_id: str
    generations: GenerationManager
    cipher: Cipher
    rate_limiter: RateLimiter
    limits: Limits
    refresh_config: Callable[[], Awaitable[None]]
    api_keys: ApiKeyAuthenticator
    metrics: GatewayMetrics  # the process's one (observability/metrics.py)
    redis: Redis | None = None
    intake: Intake = field(default_factory=Intake)
    """Closed when the process drains: new sends are refused, /readyz answers 503."""

    def apply_limits(self, limits: Limits) -> None:
        """Take runtime limits (from staff settings) into use on this instance."""
        self.limits = limits
        self.policy = replace(self.policy, initial_balance=limits.initial_balance)
        self.rate_limiter.configure(limits.rate_limit_requests, limits.rate_limit_window)
