"""The deployment files say what the code does: Docker cannot run where the tests run, so
these read the Dockerfile, compose.yaml and the nginx config and check each claim they make
against the command's real parser, the app's real routes and the settings' real names."""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
from starlette.routing import Route, WebSocketRoute

from llm_gateway.app import create_app
from llm_gateway.cli import build_parser
from llm_gateway.settings import Settings
from tests.conftest import make_settings
from tests.platform.test_cli import SETTING_NAMES

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")
NGINX = (ROOT / "deploy" / "nginx.conf").read_text(encoding="utf-8")
UVICORN_VARIABLES = {"FORWARDED_ALLOW_IPS"}  # read by uvicorn itself, not by Settings


def instructions(dockerfile: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    lines = [line for line in dockerfile.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    found = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, rest = line.strip().partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def assert_runs_a_real_command(argv: list[str]) -> None:
    """``argv`` is ``llm-gateway`` with a subcommand and options its parser accepts."""
    assert argv[0] == "llm-gateway", argv
    build_parser().parse_args(argv[1:])  # exits (SystemExit 2) on anything it does not know


def app_paths(tmp_path: Path) -> set[str]:
    settings: Settings = make_settings(f"sqlite+aiosqlite:///{tmp_path / 'unused.sqlite3'}")
    app = create_app(settings)  # nothing is connected before the lifespan starts
    return {route.path for route in app.routes if isinstance(route, Route | WebSocketRoute)}


# --- Dockerfile ------------------------------------------------------------------------------


def test_the_image_runs_serve_and_checks_healthz(tmp_path: Path) -> None:
    steps = instructions(DOCKERFILE)
    (cmd,) = [json.loads(args) for name, args in steps if name == "CMD"]
    assert cmd == ["llm-gateway", "serve", "--host", "0.0.0.0"]
    assert_runs_a_real_command(cmd)

    (healthcheck,) = [args for name, args in steps if name == "HEALTHCHECK"]
    probe = json.loads(healthcheck[healthcheck.index("CMD") + len("CMD") :])
    assert probe[:2] == ["python", "-c"]  # no curl in the slim image
    compile(probe[2], "<healthcheck>", "exec")
    (path,) = re.findall(r"'(/[a-z]+)'", probe[2])
    assert path == "/healthz"
    assert path in app_paths(tmp_path)
    assert ("EXPOSE", "8001") in steps
    assert str(Settings.model_fields["port"].default) == "8001"


def test_the_image_is_built_from_pinned_parts_and_runs_unprivileged() -> None:
    steps = instructions(DOCKERFILE)
    (python_image,) = [args for name, args in steps if name == "ARG"]
    assert re.fullmatch(r"PYTHON_IMAGE=python:3\.11\.\d+-slim-bookworm", python_image)
    stages = [args for name, args in steps if name == "FROM"]
    assert re.fullmatch(r"ghcr\.io/astral-sh/uv:(\d+\.\d+\.\d+) AS uv", stages[0])
    uv_version = stages[0].split(":")[1].split()[0]
    assert f'UV_VERSION = "{uv_version}"' in (ROOT / "dev").read_text()  # the same uv as ./dev
    assert stages[1:] == ["${PYTHON_IMAGE} AS builder", "${PYTHON_IMAGE}"]
    runs = " ".join(args for name, args in steps if name == "RUN")
    assert "uv sync --frozen --no-dev" in runs
    users = [args for name, args in steps if name == "USER"]
    assert users
    assert users[-1] not in ("root", "0")


def test_what_the_image_copies_is_in_the_build_context() -> None:
    ignored = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copied = []
    for name, args in instructions(DOCKERFILE):
        if name == "COPY" and not args.startswith("--from"):
            copied.extend(shlex.split(args)[:-1])
    assert {"pyproject.toml", "uv.lock", "README.md", "llm_gateway", "alembic"} <= set(copied)
    for source in copied:
        assert (ROOT / source).exists(), source
        assert not any(fnmatch.fnmatch(source, pattern) for pattern in ignored), source
    assert ".env" in ignored  # a developer's .env (DEBUG, a development secret) stays out


# --- compose.yaml ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    yaml = pytest.importorskip("yaml")
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return loaded


def test_every_command_compose_runs_is_a_real_one(compose: dict[str, Any]) -> None:
    gateway_services = {
        name: service
        for name, service in compose["services"].items()
        if service.get("image") == "llm-gateway:local"
    }
    assert set(gateway_services) == {"migrate", "gateway"}
    for service in gateway_services.values():
        assert_runs_a_real_command(service["command"])
    assert gateway_services["migrate"]["command"] == ["llm-gateway", "migrate"]
    assert gateway_services["gateway"]["command"][:2] == ["llm-gateway", "serve"]


def test_compose_runs_two_gateways_after_the_migrations(compose: dict[str, Any]) -> None:
    services = compose["services"]
    gateway = services["gateway"]
    assert gateway["deploy"]["replicas"] == 2
    assert gateway["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["postgres"]["image"].startswith("postgres:15")
    assert services["redis"]["image"].startswith("redis:7")
    assert services["proxy"]["depends_on"]["gateway"]["condition"] == "service_healthy"
    mounted = services["proxy"]["volumes"][0].split(":")[0]
    assert (ROOT / mounted).resolve() == ROOT / "deploy" / "nginx.conf"


def test_compose_sets_only_variables_the_gateway_reads(compose: dict[str, Any]) -> None:
    for name in ("migrate", "gateway"):
        environment = compose["services"][name]["environment"]
        unknown = set(environment) - SETTING_NAMES - UVICORN_VARIABLES
        assert not unknown, f"{name}: {unknown} are not settings"
        for required in ("DJANGO_SECRET_KEY", "REDIS_URL", "SQL_USER", "SQL_HOST"):
            assert required in environment
        assert "DATABASE_URL" in environment  # passed through when set
        # The secret comes from the environment, never from the file.
        assert environment["DJANGO_SECRET_KEY"].startswith("${DJANGO_SECRET_KEY:?")


# --- deploy/nginx.conf -----------------------------------------------------------------------


def location(path: str) -> str:
    found = re.search(r"location " + re.escape(path) + r" \{(.*?)\n        \}", NGINX, re.S)
    assert found, f"no location {path}"
    return found.group(1)


def test_the_proxy_upgrades_graphql_websockets_and_waits_for_them(tmp_path: Path) -> None:
    graphql = location("/graphql")
    assert "proxy_set_header Upgrade $http_upgrade;" in graphql
    assert "proxy_set_header Connection $connection_upgrade;" in graphql
    # Setting headers there drops the server's: they are all repeated.
    for header in ("Host", "X-Forwarded-For", "X-Forwarded-Proto", "X-Request-ID"):
        assert f"proxy_set_header {header} " in graphql
    (timeout,) = re.findall(r"proxy_read_timeout (\d+)s;", graphql)
    assert int(timeout) >= 3600
    assert "/graphql" in app_paths(tmp_path)


def test_the_proxy_streams_v1_events_unbuffered(tmp_path: Path) -> None:
    v1 = location("/v1/")
    assert "proxy_buffering off;" in v1
    (timeout,) = re.findall(r"proxy_read_timeout (\d+)s;", v1)
    assert int(timeout) >= 300
    assert "/v1/chat/completions" in app_paths(tmp_path)
    assert "server gateway:8001 resolve;" in NGINX  # compose's service name and port
