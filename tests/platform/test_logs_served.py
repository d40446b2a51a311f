"""``LOG_FORMAT=json`` under ``llm-gateway serve``, read from the process's stderr."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.platform.test_cli import EXECUTABLE, SERVER_START_SECONDS, _free_port, clean_env
from tests.support import TEST_SECRET, token


def _wait_healthy(process: subprocess.Popen[bytes], base_url: str, stderr: Path) -> None:
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"serve exited with {process.returncode}:\n{stderr.read_text()}")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)  # polling interval of a bounded wait, not a synchronisation
    pytest.fail(f"serve did not answer within {SERVER_START_SECONDS}s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    assert process.returncode in (0, -15), process.returncode  # SIGTERM: a clean shutdown


def test_serve_with_log_format_json_writes_one_object_per_line(tmp_path: Path) -> None:
    env = clean_env(
        DJANGO_SECRET_KEY=TEST_SECRET, LOG_FORMAT="json", LOG_LEVEL="INFO", DEBUG="false"
    )
    port = _free_port()
    stderr, stdout = tmp_path / "stderr.log", tmp_path / "stdout.log"
    with stderr.open("wb") as err, stdout.open("wb") as out:
        process = subprocess.Popen(
            [str(EXECUTABLE), "serve", "--migrate", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=err,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(process, base_url, stderr)
        me = httpx.post(
            f"{base_url}/graphql",
            json={"query": "{ me { userId } }"},
            headers={"Authorization": f"Bearer {token(21)}", "X-Request-ID": "req-me-1"},
            timeout=30,
        )
        assert me.json() == {"data": {"me": {"userId": 21}}}
        with sqlite3.connect(tmp_path / "llm_gateway.sqlite3") as database:  # a bug, in effect
            database.execute("ALTER TABLE dialogs RENAME TO dialogs_gone")
        failing = httpx.post(
            f"{base_url}/graphql",
            json={"query": "{ dialogs(first: 1) { edges { cursor } } }"},
            headers={"Authorization": f"Bearer {token(22)}", "X-Request-ID": "req-fail-1"},
            timeout=30,
        )
        assert failing.json()["errors"][0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    finally:
        _stop(process)

    text = stderr.read_text(encoding="utf-8")
    entries: list[dict[str, Any]] = [json.loads(line) for line in text.splitlines()]  # all JSON
    assert entries, text
    for entry in entries:
        assert {"time", "level", "logger", "message"} <= entry.keys(), entry
    loggers = {entry["logger"] for entry in entries}
    assert {"uvicorn.error", "uvicorn.access", "alembic.runtime.migration"} <= loggers

    def access(request_id: str) -> dict[str, Any]:
        (line,) = [
            e
            for e in entries
            if e["logger"] == "uvicorn.access" and e.get("request_id") == request_id
        ]
        return line

    ok = access("req-me-1")
    assert (ok["method"], ok["path"], ok["status"], ok["user_id"]) == ("POST", "/graphql", 200, 21)
    assert ok["duration_ms"] >= 0

    assert access("req-fail-1")["user_id"] == 22
    (failure,) = [e for e in entries if e["logger"] == "llm_gateway.graphql"]
    assert (failure["level"], failure["request_id"], failure["user_id"]) == (
        "ERROR",
        "req-fail-1",
        22,
    )
    assert failure["exception"].startswith("Traceback (most recent call last):")
    assert "no such table: dialogs" in failure["exception"]
    # Lines outside any request name none.
    assert not any("request_id" in e for e in entries if e["logger"].startswith("alembic"))
    assert "Traceback" not in stdout.read_text()  # stdout: the banner only
