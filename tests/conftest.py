"""Test fixtures: a fresh, migrated database per test on SQLite and on PostgreSQL.

Every database-backed test runs once per backend. Isolation is a new database per test:
PostgreSQL copies a template migrated once per session (``CREATE DATABASE … TEMPLATE``,
made ahead on a thread: ``tests.pg_databases``), SQLite copies a migrated file. So tests
may use many connections at once (races) and still never see each other's rows.

PostgreSQL and Redis are found at ``TEST_POSTGRES_URL`` / ``TEST_REDIS_URL`` (defaults:
the local servers). Locally a missing server skips its tests; with
``LLM_GATEWAY_REQUIRE_SERVICES=1`` (set by .ci/run) it fails them instead.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.engine import make_url

from llm_gateway.app import create_app
from llm_gateway.db import migrate
from llm_gateway.settings import Settings
from tests.admin_support import AdminClient
from tests.fakes.omnimap_back import OmnimapBack, omnimap_back
from tests.pg_databases import DatabaseSupply
from tests.support import TEST_SECRET, GraphQLClient

POSTGRES_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
REQUIRE_SERVICES = os.environ.get("LLM_GATEWAY_REQUIRE_SERVICES") == "1"
BACKENDS = [b.strip() for b in os.environ.get("TEST_BACKENDS", "sqlite,postgresql").split(",") if b]


def _unavailable(what: str, error: BaseException) -> None:
    message = f"{what} is not reachable ({type(error).__name__}: {error})"
    if REQUIRE_SERVICES:
        pytest.fail(message + " and LLM_GATEWAY_REQUIRE_SERVICES=1", pytrace=False)
    pytest.skip(message)


def _pg_dsn(database: str) -> str:
    url = make_url(POSTGRES_URL).set(drivername="postgresql", database=database)
    return url.render_as_string(hide_password=False)


async def _pg_admin(*statements: str) -> None:
    connection = await asyncpg.connect(_pg_dsn(make_url(POSTGRES_URL).database or "postgres"))
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


def _pg_url(database: str) -> str:
    return (
        make_url(POSTGRES_URL)
        .set(drivername="postgresql+asyncpg", database=database)
        .render_as_string(hide_password=False)
    )


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A PostgreSQL database migrated to head, used as the template of every test's."""
    name = f"llmgw_tpl_{os.getpid()}"
    try:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}"', f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError) as exc:
        _unavailable("PostgreSQL", exc)
    migrate.upgrade(_pg_url(name))
    yield name
    asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def pg_databases(pg_template: str) -> Iterator[DatabaseSupply]:
    """Copies of the template made ahead of the tests that take them (``database_url``)."""
    supply = DatabaseSupply(_pg_dsn(make_url(POSTGRES_URL).database or "postgres"), pg_template)
    yield supply
    supply.close()


@pytest.fixture(scope="session")
def redis_available() -> str:
    """The test Redis URL, once it answered a PING (else skip, or fail in CI)."""

    async def ping() -> None:
        client = Redis.from_url(REDIS_URL)
        try:
            await client.ping()
        finally:
            await client.aclose()

    try:
        asyncio.run(ping())
    except (OSError, RedisError) as exc:
        _unavailable("Redis", exc)
    return REDIS_URL


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite") / "template.sqlite3"
    migrate.upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """PostgreSQL-only tests (real row-lock races) are not generated for SQLite at all."""
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        callspec = getattr(item, "callspec", None)
        on_sqlite = callspec is not None and callspec.params.get("backend") == "sqlite"
        (drop if on_sqlite and item.get_closest_marker("postgres_only") else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database at head (seed data included) for this test alone."""
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "gateway.sqlite3"
        shutil.copyfile(template, path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    supply: DatabaseSupply = request.getfixturevalue("pg_databases")
    try:
        name = supply.take()
    except (OSError, asyncpg.PostgresError) as exc:
        _unavailable("PostgreSQL", exc)
    yield _pg_url(name)
    supply.give_back(name)


def make_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "django_secret_key": TEST_SECRET,
        "debug": False,
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Any]:
    application = create_app(settings)
    async with LifespanManager(application):
        yield application


@pytest.fixture
async def http(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
        yield client


@pytest.fixture
def gql(http: httpx.AsyncClient) -> GraphQLClient:
    return GraphQLClient(http)


STAFF_LOGIN = ("alice", "alice-password")
"""A staff account of the fake omnimap-back (user 900); ``bob`` (901) is not staff."""


@pytest.fixture
async def omnimap() -> AsyncIterator[OmnimapBack]:
    """A fake omnimap-back on loopback with a staff member and a plain user."""
    async with omnimap_back() as fake:
        fake.add(900, *STAFF_LOGIN, staff=True)
        fake.add(901, "bob", "bob-password")
        yield fake


def admin_settings(database_url: str, omnimap: OmnimapBack, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "backend_auth_url": omnimap.login_url,
        "backend_users_url": omnimap.users_url,
        "backend_timeout_seconds": 2,
        **overrides,
    }
    return make_settings(database_url, **values)


@pytest.fixture
async def admin_app(database_url: str, omnimap: OmnimapBack) -> AsyncIterator[Any]:
    application = create_app(admin_settings(database_url, omnimap))
    async with LifespanManager(application):
        yield application


@pytest.fixture
async def admin(admin_app: Any) -> AsyncIterator[AdminClient]:
    """A signed-out browser of the admin UI (https, so Secure cookies are kept)."""
    transport = httpx.ASGITransport(app=admin_app)
    async with httpx.AsyncClient(transport=transport, base_url="https://gateway.test") as client:
        yield AdminClient(client)


@pytest.fixture
async def staff_admin(admin: AdminClient) -> AdminClient:
    """The admin UI, signed in as the fake's staff member."""
    response = await admin.login(*STAFF_LOGIN)
    assert response.status_code == 303, response.text
    return admin
