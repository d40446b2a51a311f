"""LiteLLM's proxy as a competitor: installed into a virtual environment of its own, then run.

    .venv/bin/python -m benchmarks.litellm_proxy     # only installs (or reports) LiteLLM

``ensure_installed`` makes ``benchmarks/.litellm-venv`` when it lacks ``litellm`` (the
``python3`` on PATH, ``python3 -m venv``), installs ``litellm[proxy]`` at ``PINNED``
from the package registry or, if that cannot be installed, the newest ``1.108.x`` that
can, and returns the version installed. ``start_litellm`` writes a config mapping
``gpt-4-turbo`` to the fake upstream and runs ``litellm --config … --num_workers 1`` as
a proxy with no database and no master key (any bearer token is let through), logging
errors only; it returns once ``/health/readiness`` answers 200.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from benchmarks.processes import STARTUP_SECONDS, STOP_SECONDS, free_port
from tests.fakes import DEFAULT_OPENAI_KEY

VENV = Path(__file__).resolve().parent / ".litellm-venv"
PINNED = "1.108.14"
SERIES = "1.108."
LITELLM_STARTUP_SECONDS = max(STARTUP_SECONDS, 120.0)
WORKERS = 1  # --num_workers: recorded with the results as it ran
"""The proxy imports a great deal on its first start (byte-compiling a fresh install)."""


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    print("  $", " ".join(command), flush=True)
    return subprocess.run(command, capture_output=True, text=True, check=False)


def installed_version(venv: Path = VENV) -> str | None:
    python = venv / "bin" / "python"
    if not python.exists():
        return None
    done = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
        capture_output=True,
        text=True,
        check=False,
    )
    return (
        done.stdout.strip()
        if done.returncode == 0 and (venv / "bin" / "litellm").exists()
        else None
    )


def _series_versions(pip: str) -> list[str]:
    """The registry's ``1.108.x`` releases (``pip index versions``), newest first."""
    done = _run(pip, "index", "versions", "litellm")
    found = {int(n) for n in re.findall(r"\b1\.108\.(\d+)\b", done.stdout)}
    return [f"{SERIES}{n}" for n in sorted(found, reverse=True)]


def ensure_installed(venv: Path = VENV) -> str:
    """The installed LiteLLM version, installing it first when the venv lacks it.

    ``PINNED`` first; if it cannot be installed (a dependency missing from the registry,
    say), each other ``1.108.x``, newest first, until one can.
    """
    version = installed_version(venv)
    if version is not None:
        return version
    print(f"installing LiteLLM into {venv} (once; a few minutes)", flush=True)
    if not (venv / "bin" / "python").exists():
        made = _run("python3", "-m", "venv", str(venv))
        if made.returncode != 0:
            raise RuntimeError(f"python3 -m venv failed: {made.stderr[-2000:]}")
    pip = str(venv / "bin" / "pip")
    _run(pip, "install", "--quiet", "--upgrade", "pip")
    tried: list[str] = []
    for candidate in [PINNED, *(v for v in _series_versions(pip) if v != PINNED)]:
        done = _run(pip, "install", "--quiet", f"litellm[proxy]=={candidate}")
        if done.returncode == 0:
            break
        tried.append(candidate)
        error = done.stderr.strip().splitlines()[-1:] or ["?"]
        print(f"  litellm=={candidate} did not install: {error[0][:300]}", flush=True)
    else:
        raise RuntimeError(f"no LiteLLM {SERIES}x could be installed (tried {tried})")
    version = installed_version(venv)
    if version is None:
        raise RuntimeError("LiteLLM installed, but its version cannot be read")
    return version


@dataclass(frozen=True, slots=True)
class LiteLLM:
    process: asyncio.subprocess.Process
    port: int
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


def write_config(path: Path, model: str, upstream: str) -> None:
    """``model`` routed to the fake upstream as an OpenAI model; nothing else configured."""
    path.write_text(
        "model_list:\n"
        f"  - model_name: {model}\n"
        "    litellm_params:\n"
        f"      model: openai/{model}\n"
        f"      api_base: {upstream}\n"
        f"      api_key: {DEFAULT_OPENAI_KEY}\n"
        "litellm_settings:\n"
        "  turn_off_message_logging: true\n"
    )


def litellm_env() -> dict[str, str]:
    """No database, no master key, no telemetry, the bundled cost map; errors only in the log."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_", "LITELLM_", "OPENAI_", "REDIS_", "STORE_MODEL"))
    }
    env.update(
        # Since 1.108 the proxy refuses to start without a master key unless told this; with
        # no database a master key would be the only key it accepts (one for every chat).
        LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY="true",
        LITELLM_LOG="ERROR",
        LITELLM_TELEMETRY_DISABLED="true",
        LITELLM_LOCAL_MODEL_COST_MAP="True",
        NO_DOCS="True",
    )
    return env


async def start_litellm(workdir: Path, model: str, upstream: str, venv: Path = VENV) -> LiteLLM:
    config = workdir / "litellm.yaml"
    write_config(config, model, upstream)
    port = free_port()
    log = workdir / "litellm.log"
    with log.open("wb") as sink:
        process = await asyncio.create_subprocess_exec(
            str(venv / "bin" / "litellm"),
            "--config",
            str(config),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--num_workers",
            str(WORKERS),
            cwd=workdir,
            env=litellm_env(),
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop_litellm ends all of it
        )
    proxy = LiteLLM(process, port, log)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + LITELLM_STARTUP_SECONDS
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        while loop.time() < deadline:
            if process.returncode is not None:
                await stop_litellm(proxy)
                raise RuntimeError(f"LiteLLM exited: {log.read_text(errors='replace')[-3000:]}")
            try:
                if (await client.get("/health/readiness")).status_code == 200:
                    return proxy
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    await stop_litellm(proxy)
    raise RuntimeError(f"LiteLLM did not become ready: {log.read_text(errors='replace')[-3000:]}")


async def stop_litellm(proxy: LiteLLM) -> int:
    """SIGTERM to the proxy's process group, a graceful wait, then SIGKILL to the group."""
    group = proxy.pid  # the group's leader: start_new_session
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGTERM)
    try:
        async with asyncio.timeout(STOP_SECONDS):
            code = await proxy.process.wait()
    except TimeoutError:
        code = None
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGKILL)  # any child left behind
    return code if code is not None else await proxy.process.wait()


def log_summary(proxy: LiteLLM) -> dict[str, Any]:
    """Counts of the proxy's log lines that tell of trouble, and the last few of them."""
    lines = proxy.log.read_text(errors="replace").splitlines()
    trouble = [line for line in lines if "ERROR" in line or "Traceback" in line]
    return {
        "tracebacks": sum("Traceback" in line for line in lines),
        "error_lines": sum("ERROR" in line for line in lines),
        "last_errors": [line[:300] for line in trouble[-5:]],
    }


if __name__ == "__main__":
    print(f"LiteLLM {ensure_installed()} in {VENV}")
