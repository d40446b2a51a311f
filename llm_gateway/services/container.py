"""The long-lived parts a process builds once in the app's lifespan and hands down."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from llm_gateway.auth import TokenVerifier
from llm_gateway.db.engine import Database
from llm_gateway.services.balances import MoneyPolicy
from llm_gateway.services.config import Cipher
from llm_gateway.services.events import Broker
from llm_gateway.services.generation import GenerationManager
from llm_gateway.services.rate_limit import RateLimiter
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
    redis: Redis | None = None
