"""Liveness and readiness: /healthz says the process is up, /readyz whether it can serve."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.engine import make_url

from llm_gateway.app import create_app
from llm_gateway.settings import Settings
from tests.conftest import REDIS_URL, _pg_admin, _unavailable, make_settings

CLOSED_REDIS = "redis://127.0.0.1:1/0"  # port 1: nothing listens, connections are refused


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan started, and a client for it."""
    async with LifespanManager(create_app(settings)) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as c:
            yield c


def checks_by_name(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    checks: list[dict[str, Any]] = body["checks"]
    assert all(set(c) == {"name", "ok", "latencyMs", "error"} for c in checks), checks
    return {c["name"]: c for c in checks}


async def test_healthz_reports_alive(http: httpx.AsyncClient) -> None:
    response = await http.get("/healthz")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"status": "alive"}


async def test_readyz_is_ready_with_the_database(database_url: str) -> None:
    async with running(make_settings(database_url, redis_url=None)) as client:
        response = await client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    checks = checks_by_name(body)
    assert set(checks) == {"database"}  # no REDIS_URL, no redis check
    assert checks["database"]["ok"] is True
    assert checks["database"]["error"] is None
    assert isinstance(checks["database"]["latencyMs"], int | float)
    assert checks["database"]["latencyMs"] >= 0


async def test_app_starts_with_redis_down_and_is_not_ready(database_url: str) -> None:
    async with running(make_settings(database_url, redis_url=CLOSED_REDIS)) as client:
        alive = await client.get("/healthz")
        ready = await client.get("/readyz")

    assert (alive.status_code, alive.json()) == (200, {"status": "alive"})
    assert ready.status_code == 503
    body = ready.json()
    assert body["status"] == "not_ready"
    checks = checks_by_name(body)
    assert checks["database"]["ok"] is True
    assert checks["redis"]["ok"] is False
    assert isinstance(checks["redis"]["error"], str)
    assert "ConnectionError" in checks["redis"]["error"]


@pytest.fixture
async def redis_url() -> str:
    """The test Redis, or a skip (a failure under LLM_GATEWAY_REQUIRE_SERVICES=1)."""
    client = Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except (OSError, RedisError) as exc:
        _unavailable("Redis", exc)
    finally:
        await client.aclose()
    return REDIS_URL


async def test_readyz_is_ready_with_redis_up(database_url: str, redis_url: str) -> None:
    async with running(make_settings(database_url, redis_url=redis_url)) as client:
        response = await client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    checks = checks_by_name(body)
    assert set(checks) == {"database", "redis"}
    assert checks["redis"] == {**checks["redis"], "ok": True, "error": None}


@pytest.mark.postgres_only
async def test_readyz_fails_when_the_database_goes_away(database_url: str) -> None:
    name = make_url(database_url).database
    async with running(make_settings(database_url)) as client:
        assert (await client.get("/readyz")).status_code == 200
        await _pg_admin(f'DROP DATABASE "{name}" WITH (FORCE)')
        response = await client.get("/readyz")
        alive = await client.get("/healthz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not_ready"
    database = checks_by_name(body)["database"]
    assert database["ok"] is False
    assert isinstance(database["error"], str)
    assert database["error"]
    assert alive.status_code == 200  # alive, just not ready
