"""The ``llm-gateway`` command, run as an operator runs it: a subprocess, a clean environment.

Each run starts in an empty directory (Settings read ``./.env``) with every gateway
variable removed from the environment, then given only what the test says.
Argument and validation details that never reach the server run ``main()`` in-process.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest
from sqlalchemy.engine import make_url

from llm_gateway.auth import TokenVerifier
from llm_gateway.cli import main
from llm_gateway.db.migrate import head_revision
from llm_gateway.settings import Settings
from tests.conftest import _pg_admin

EXECUTABLE = Path(sys.executable).with_name("llm-gateway")
SECRET = "a-production-secret-of-omnimap-back-0123456789"
DEV_SECRET = "dev-insecure-vABaurxjTI1An4WWAw3VAWYo7IgMH00We0gpGeNmioU"
RUN_TIMEOUT_SECONDS = 120
SERVER_START_SECONDS = 60
READ_MESSAGES = (
    "query($d: UUID!) { messages(dialogId: $d) { edges { node { role status content } } } }"
)


def _setting_names() -> set[str]:
    names: set[str] = set()
    for name, field in Settings.model_fields.items():
        names.add(name.upper())
        alias = field.validation_alias
        choices = getattr(alias, "choices", [alias] if isinstance(alias, str) else [])
        names.update(str(choice).upper() for choice in choices)
    return names


SETTING_NAMES = _setting_names()


def clean_env(**env: str) -> dict[str, str]:
    """The current environment without any gateway setting, plus ``env``."""
    kept = {k: v for k, v in os.environ.items() if k.upper() not in SETTING_NAMES}
    return {**kept, **env}


def run(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(EXECUTABLE), *args],
        cwd=cwd,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_SECONDS,
        check=False,
    )


def assert_config_error(result: subprocess.CompletedProcess[str], *names: str) -> None:
    """Exit 2, one readable line of blame on stderr, no traceback, nothing served."""
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "llm-gateway: configuration error:" in result.stderr
    for name in names:
        assert name in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert "LLM Gateway on" not in result.stdout


@pytest.fixture
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """For in-process runs of ``main()``: the same clean slate as the subprocesses."""
    for variable in list(os.environ):
        if variable.upper() in SETTING_NAMES:
            monkeypatch.delenv(variable)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def verifier(secret: str) -> TokenVerifier:
    return TokenVerifier(secret, ["HS256"], 30)


# --- token -----------------------------------------------------------------------------------


def test_token_refuses_with_debug_off(tmp_path: Path) -> None:
    result = run(tmp_path, "token", DJANGO_SECRET_KEY=SECRET)
    assert result.returncode == 2
    assert result.stdout == ""
    assert "DEBUG" in result.stderr
    assert "--allow-production" in result.stderr


def test_token_with_debug_on_mints_a_token_the_gateway_accepts(tmp_path: Path) -> None:
    staff = run(tmp_path, "token", "--user-id", "7", "--staff", DEBUG="true", JWT_SECRET=DEV_SECRET)
    assert staff.returncode == 0, staff.stderr
    principal = verifier(DEV_SECRET).verify(staff.stdout.strip())
    assert (principal.user_id, principal.is_staff) == (7, True)

    default = run(tmp_path, "token", DEBUG="true", DJANGO_SECRET_KEY=DEV_SECRET)
    assert default.returncode == 0, default.stderr
    principal = verifier(DEV_SECRET).verify(default.stdout.strip())
    assert (principal.user_id, principal.is_staff) == (1, False)


def test_token_reads_the_dotenv_the_quick_start_writes(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(f"DEBUG=true\nDJANGO_SECRET_KEY={DEV_SECRET}\n")
    result = run(tmp_path, "token", "--user-id", "3")
    assert result.returncode == 0, result.stderr
    assert verifier(DEV_SECRET).verify(result.stdout.strip()).user_id == 3


def test_token_with_debug_on_still_needs_a_secret(tmp_path: Path) -> None:
    assert_config_error(run(tmp_path, "token", DEBUG="true"), "DJANGO_SECRET_KEY")


def test_token_allow_production_mints_with_the_production_secret(
    isolated: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DJANGO_SECRET_KEY", SECRET)
    assert main(["token", "--user-id", "12", "--allow-production", "--hours", "1"]) == 0
    minted = capsys.readouterr().out.strip()
    assert verifier(SECRET).verify(minted).user_id == 12
    # The lifetime asked for, not the default day.
    exp = jwt.decode(minted, SECRET, algorithms=["HS256"])["exp"]
    assert 3000 < exp - time.time() <= 3600


def test_token_allow_production_still_refuses_a_development_secret(
    isolated: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DJANGO_SECRET_KEY", DEV_SECRET)
    assert main(["token", "--allow-production"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "development secret" in captured.err


@pytest.mark.parametrize("args", [["--user-id", "0"], ["--user-id", "-4"], ["--hours", "0"]])
def test_token_refuses_values_that_would_make_a_useless_token(
    isolated: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
) -> None:
    monkeypatch.setenv("DEBUG", "true")
    monkeypatch.setenv("DJANGO_SECRET_KEY", DEV_SECRET)
    with pytest.raises(SystemExit) as exited:
        main(["token", *args])
    assert exited.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "positive integer" in captured.err


# --- serve -----------------------------------------------------------------------------------


def _listening_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


def test_serve_without_a_secret_exits_2_before_binding_a_port(tmp_path: Path) -> None:
    # The port is taken: had serve tried to bind it, it would fail with "address in use".
    with _listening_socket() as taken:
        port = str(taken.getsockname()[1])
        result = run(tmp_path, "serve", "--port", port)
    assert_config_error(result, "DJANGO_SECRET_KEY")
    assert "address already in use" not in result.stderr.lower()


def test_serve_with_a_development_secret_and_debug_off_exits_2(tmp_path: Path) -> None:
    result = run(tmp_path, "serve", DJANGO_SECRET_KEY=DEV_SECRET)
    assert_config_error(result, "DJANGO_SECRET_KEY", "development secret")


def test_serve_migrate_refuses_before_touching_the_database(tmp_path: Path) -> None:
    result = run(tmp_path, "serve", "--migrate")
    assert_config_error(result, "DJANGO_SECRET_KEY")
    assert list(tmp_path.iterdir()) == []  # no SQLite file was created or migrated


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"PORT": "eighty"}, "PORT"),
        ({"LOG_LEVEL": "verbose"}, "LOG_LEVEL"),
        ({"JWT_ALGORITHMS": "RS256"}, "JWT_ALGORITHMS"),
        ({"DATABASE_URL": "mysql://u@db/app"}, "DATABASE_URL"),
        ({"DATABASE_URL": "not a url"}, "DATABASE_URL"),
    ],
)
def test_serve_with_an_invalid_variable_names_it(
    tmp_path: Path, env: dict[str, str], name: str
) -> None:
    result = run(tmp_path, "serve", DJANGO_SECRET_KEY=SECRET, **env)
    assert_config_error(result, name)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """``llm-gateway serve`` in DEBUG with a dev secret, in an empty folder and with no
    migrate step (a first run): yields (base URL, token)."""
    env = {"DEBUG": "true", "DJANGO_SECRET_KEY": DEV_SECRET, "LOG_LEVEL": "warning"}
    minted = run(tmp_path, "token", "--user-id", "21", **env)
    assert minted.returncode == 0, minted.stderr
    port = _free_port()
    process = subprocess.Popen(
        [str(EXECUTABLE), "serve", "--port", str(port)],
        cwd=tmp_path,
        env=clean_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_SECONDS
        while True:
            if process.poll() is not None:
                out, err = process.communicate()
                pytest.fail(f"serve exited with {process.returncode}:\n{out}\n{err}")
            try:
                if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"serve did not answer within {SERVER_START_SECONDS}s")
            time.sleep(0.05)  # polling interval of a bounded wait, not a synchronisation
        yield base_url, minted.stdout.strip()
    finally:
        if process.poll() is None:
            process.terminate()
        try:
            process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
    assert process.returncode in (0, -15), process.returncode  # SIGTERM: a clean shutdown


def test_serve_answers_graphql_with_a_token_from_the_token_command(
    served: tuple[str, str], tmp_path: Path
) -> None:
    base_url, minted = served
    response = httpx.post(
        f"{base_url}/graphql",
        json={"query": "{ me { userId isStaff } }"},
        headers={"Authorization": f"Bearer {minted}"},
        timeout=30,
    )
    assert response.status_code == 200
    assert response.json() == {"data": {"me": {"userId": 21, "isStaff": False}}}
    assert (tmp_path / "llm_gateway.sqlite3").exists()  # the first start made and migrated it


def test_a_first_run_gives_a_working_chat_with_the_built_in_model(
    served: tuple[str, str],
) -> None:
    base_url, minted = served

    def gql(query: str, **variables: str) -> dict[str, object]:
        response = httpx.post(
            f"{base_url}/graphql",
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {minted}"},
            timeout=30,
        )
        body: dict[str, object] = response.json()
        assert "errors" not in body, body
        return body

    created = gql("mutation { createDialog(input: {}) { id model { name } } }")
    dialog = created["data"]["createDialog"]  # type: ignore[index]
    assert dialog["model"]["name"] == "mock"
    gql(
        'mutation($d: UUID!) { sendMessage(input: {dialogId: $d, content: "Hi"}) { replayed } }',
        d=dialog["id"],
    )
    deadline = time.monotonic() + 30
    while True:  # a bounded wait for the built-in model's answer, read as a client would
        read = gql(READ_MESSAGES, d=dialog["id"])
        nodes = [e["node"] for e in read["data"]["messages"]["edges"]]  # type: ignore[index]
        if nodes[-1]["status"] == "COMPLETE":
            break
        assert time.monotonic() < deadline, nodes
        time.sleep(0.05)
    assert [n["role"] for n in nodes] == ["USER", "ASSISTANT"]
    assert "Hi" in nodes[-1]["content"]


def test_serve_refuses_an_unmigrated_postgresql_database(tmp_path: Path, database_url: str) -> None:
    """PostgreSQL is migrated on purpose: serve names the command instead of migrating."""
    empty = make_url(database_url).set(database=f"{make_url(database_url).database}_empty")
    asyncio.run(_pg_admin(f'CREATE DATABASE "{empty.database}"'))
    try:
        url = empty.render_as_string(hide_password=False)
        result = run(
            tmp_path, "serve", DEBUG="true", DJANGO_SECRET_KEY=DEV_SECRET, DATABASE_URL=url
        )
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{empty.database}" WITH (FORCE)'))
    assert result.returncode == 2, result.stderr
    assert "run `llm-gateway migrate`" in result.stderr


# --- migrate and export-schema --------------------------------------------------------------


def test_migrate_creates_the_sqlite_database_at_head_and_is_repeatable(tmp_path: Path) -> None:
    target = tmp_path / "data" / "gw.sqlite3"
    for _ in range(2):
        result = run(tmp_path, "migrate", SQLITE_PATH=str(target))
        assert result.returncode == 0, result.stderr
        assert f"database at {head_revision()}" in result.stdout
    assert target.exists()


@pytest.fixture
def backend() -> str:
    """The one database-backed test here is about a PostgreSQL URL with a password."""
    return "postgresql"


def test_migrate_never_prints_the_database_password(
    database_url: str,
    isolated: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    password = "s3cr3t-Pa55word"  # the local server trusts loopback, so any password works
    url = make_url(database_url).set(drivername="postgresql", password=password)
    monkeypatch.setenv("DATABASE_URL", url.render_as_string(hide_password=False))
    assert main(["migrate"]) == 0
    out = capsys.readouterr().out
    assert f"database at {head_revision()}" in out
    assert "postgresql+asyncpg://" in out
    assert password not in out


def test_export_schema_prints_the_sdl_without_any_configuration(tmp_path: Path) -> None:
    result = run(tmp_path, "export-schema", "--output", "-")
    assert result.returncode == 0, result.stderr
    assert "type Query {" in result.stdout
    assert "me: Me!" in result.stdout
    assert result.stdout.endswith("}\n")


def test_export_schema_writes_the_file_it_is_given(
    isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["export-schema", "--output", "out.graphql"]) == 0
    assert capsys.readouterr().out == ""
    written = (isolated / "out.graphql").read_text(encoding="utf-8")
    assert "type Query {" in written
    assert "type Mutation {" in written
