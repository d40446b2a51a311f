"""API overhead: streamed ``POST /v1/chat/completions`` through the gateway and through
LiteLLM's proxy, against the upstream directly (the floor), all in one run.

    .venv/bin/python -m benchmarks.api_overhead            # full run, about 10 minutes
    .venv/bin/python -m benchmarks.api_overhead --quick    # about a minute (+ the install)
    .venv/bin/python -m benchmarks.api_overhead --workers 2   # gateway: serve --workers 2

Starts, on 127.0.0.1: the fake OpenAI upstream of ``gateway_overhead`` in its own process
(50 ms to the first token, then 100 tokens 10 ms apart); ``llm-gateway serve`` as in
production (PostgreSQL in a scratch database, Redis, its hold and ledger on; ``--workers
N`` worker processes); LiteLLM's
proxy (``litellm_proxy``: installed on first use into ``benchmarks/.litellm-venv`` from
the package registry, one worker, no database, no master key) routing ``gpt-4-turbo`` to
the same upstream. Before the timed phases, one user per gateway chat, each with a
funded balance and an API key of their own, is made in the scratch database.

Then, for each arrival rate, three open-loop phases, each ``--seconds`` long: direct
chats (the floor), gateway chats, LiteLLM chats; every chat streams with the official
OpenAI SDK and its own key (LiteLLM, with no database, lets any key through). Added time
= a target's percentile minus the floor's at the same rate. A target that saturates
(``gateway_overhead.saturated``: errors over 5%, throughput under 85% of the rate, or
added p99 TTFT over a second) is not run at higher rates; the other goes on. CPU per
chat is each server's process tree's CPU during its phase over the chats started.

Prints a table per target and the issue's verdict (``api_report``), and writes
benchmarks/results/api_overhead.json and .png. The load generator shares the machine
with both servers: its CPU and the load average are recorded with each phase.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import shutil
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx2
import openai
import uvloop

from benchmarks import api_report, chat_load, litellm_proxy, processes, procfs
from benchmarks.api_phase import Keys, keyed_chats, make_key_users, measure
from benchmarks.chat_load import PhaseStats, direct_chats
from benchmarks.fake_upstream import TOKEN_TEXT
from benchmarks.gateway_overhead import (
    FIRST_TOKEN_MS,
    REDIS_URL,
    RESULTS,
    TOKEN_INTERVAL_MS,
    TOKENS,
)
from benchmarks.overhead_phase import saturated
from benchmarks.overhead_report import added, code_version, machine, phase_json
from benchmarks.scratch import MODEL, SECRET, admin, scratch_database
from tests.fakes import DEFAULT_OPENAI_KEY

EXPECTED = TOKEN_TEXT * TOKENS
WARM_RATE, WARM_SECONDS = 5.0, 2.0
LIMITS = httpx2.Limits(max_connections=4000, max_keepalive_connections=4000)


def sdk_client(base_url: str, key: str) -> openai.AsyncOpenAI:
    """The official SDK, no retries, with a connection pool of its own."""
    return openai.AsyncOpenAI(
        base_url=base_url,
        api_key=key,
        max_retries=0,
        timeout=chat_load.CHAT_TIMEOUT_SECONDS,
        http_client=openai.DefaultAsyncHttpxClient(limits=LIMITS),
    )


def target_row(rate: float, stats: PhaseStats, floor: PhaseStats) -> dict[str, Any]:
    added_ttft = added(stats.ttft_ms, floor.ttft_ms)
    full = saturated(rate, stats, added_ttft["p99"])
    return {
        "rate": rate,
        "added_ttft_ms": added_ttft,
        "added_total_ms": added(stats.total_ms, floor.total_ms),
        "saturated": full,
        "sustained": not full
        and stats.completed == stats.chats
        and added_ttft["p99"] < api_report.SUSTAINED_P99_MS,
        "phase": phase_json(stats),
    }


async def run_rates(
    args: argparse.Namespace,
    rates: list[float],
    database: str,
    clients: dict[str, openai.AsyncOpenAI],
    pids: dict[str, int],
    keys: dict[str, Keys],
) -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    """The timed phases: (floor rows, rows per target)."""

    def chats(target: str, count: int) -> chat_load.Chat:
        return keyed_chats(clients[target], keys[target].take(count), MODEL, EXPECTED)

    warm = round(WARM_RATE * WARM_SECONDS)
    for target in pids:  # warm both servers (connections, caches, first imports)
        await chat_load.open_loop(chats(target, warm), WARM_RATE, WARM_SECONDS)
    direct = direct_chats(clients["direct"], MODEL, EXPECTED)
    await chat_load.open_loop(direct, WARM_RATE, WARM_SECONDS)
    await asyncio.sleep(chat_load.SETTLE_SECONDS)
    floors: list[dict[str, Any]] = []
    rows: dict[str, list[dict[str, Any]]] = {target: [] for target in pids}
    running = list(pids)
    for rate in rates:
        if not running:
            break
        floor = await measure("direct", direct, rate, args.seconds, None, database)
        floors.append({"rate": rate, "phase": phase_json(floor)})
        for target in list(running):
            count = max(1, round(rate * args.seconds))
            stats = await measure(
                target, chats(target, count), rate, args.seconds, pids[target], database
            )
            rows[target].append(target_row(rate, stats, floor))
            if rows[target][-1]["saturated"]:
                print(f"{target} saturated at {rate:g}/s; no higher rate for it", flush=True)
                running.remove(target)
    return floors, rows


async def main_async(args: argparse.Namespace, litellm_version: str) -> dict[str, Any]:
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    rates = [float(r) for r in args.rates.split(",") if r]
    needed = int(sum(rates) * args.seconds) + len(rates) + round(WARM_RATE * WARM_SECONDS)
    workdir = Path(tempfile.mkdtemp(prefix="llmgw-api-overhead-"))
    result: dict[str, Any] = {
        "benchmark": "API overhead: streamed /v1/chat/completions, gateway vs LiteLLM vs direct",
        "machine": machine(),
        "code": code_version(),
        "load_average_at_start": procfs.load_average(),
        "upstream": {
            "first_token_ms": FIRST_TOKEN_MS,
            "tokens": TOKENS,
            "token_interval_ms": TOKEN_INTERVAL_MS,
        },
        "seconds_per_phase": args.seconds,
        "gateway": {"workers": args.workers},
        "litellm": {
            "version": litellm_version,
            "pinned": litellm_proxy.PINNED,
            "workers": litellm_proxy.WORKERS,
            "database": None,
        },
    }
    started = time.monotonic()
    upstream = await processes.start_fake(FIRST_TOKEN_MS, TOKENS, TOKEN_INTERVAL_MS)
    try:
        async with scratch_database() as (name, database_url), contextlib.AsyncExitStack() as stack:
            result["postgres"] = (await admin("SHOW server_version"))[0][0]
            made = time.monotonic()
            gateway_keys = await make_key_users(database_url, needed)
            print(f"{needed} users and API keys in {time.monotonic() - made:.1f} s", flush=True)
            env = processes.gateway_env(database_url, REDIS_URL, SECRET, upstream.base_url)
            gateway = await processes.start_gateway(env, workdir, "gateway", workers=args.workers)
            stack.push_async_callback(_stop_gateway, gateway, result)
            litellm = await litellm_proxy.start_litellm(workdir, MODEL, upstream.base_url)
            stack.push_async_callback(_stop_litellm, litellm, result)
            clients = {
                "direct": sdk_client(upstream.base_url, DEFAULT_OPENAI_KEY),
                "gateway": sdk_client(f"{gateway.base_url}/v1", "unused"),
                "litellm": sdk_client(litellm.base_url, "unused"),
            }
            for client in clients.values():
                await stack.enter_async_context(client)
            keys = {
                "gateway": Keys(iter(gateway_keys)),
                "litellm": Keys(f"sk-bench-{i}" for i in itertools.count()),
            }
            pids = {"gateway": gateway.pid, "litellm": litellm.pid}
            floors, rows = await run_rates(args, rates, name, clients, pids, keys)
            result["floor"] = floors
            result["targets"] = rows
            result["summary"] = api_report.verdict(rows, rates)
    finally:
        await processes.stop(upstream.process)
        logs = (result.get("gateway_log", {}), result.get("litellm_log", {}))
        if any(log.get("tracebacks") for log in logs):
            print(f"server logs kept in {workdir}", flush=True)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    result["elapsed_seconds"] = round(time.monotonic() - started, 1)
    result["load_average_at_end"] = procfs.load_average()
    return result


async def _stop_gateway(gateway: processes.Gateway, result: dict[str, Any]) -> None:
    code = await processes.stop(gateway.process)
    log = gateway.log.read_text(errors="replace")
    result["gateway_log"] = {
        "exit_code": code,
        "tracebacks": log.count("Traceback"),
        "warnings": log.count(" WARNING "),
        "errors": log.count(" ERROR "),
    }


async def _stop_litellm(proxy: litellm_proxy.LiteLLM, result: dict[str, Any]) -> None:
    code = await litellm_proxy.stop_litellm(proxy)
    result["litellm_log"] = {"exit_code": code, **litellm_proxy.log_summary(proxy)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a short run (about a minute)")
    parser.add_argument("--rates", help="arrival rates, chats/s (default 2,5,10,20,...,80)")
    parser.add_argument("--seconds", type=float, help="length of each phase (default 10)")
    parser.add_argument(
        "--workers", type=int, default=1, help="gateway worker processes (serve --workers N)"
    )
    parser.add_argument("--output", type=Path, default=RESULTS / "api_overhead.json")
    args = parser.parse_args()
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    args.rates = args.rates or ("5,20" if args.quick else "2,5,10,20,30,40,50,60,80")
    args.seconds = args.seconds or (4.0 if args.quick else 10.0)
    version = litellm_proxy.ensure_installed()
    print(f"LiteLLM {version} ({litellm_proxy.VENV}); gateway {args.workers} worker(s)", flush=True)
    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            result = runner.run(main_async(args, version))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("interrupted: servers stopped, scratch database dropped", flush=True)
        raise SystemExit(130) from None
    rows = result.get("targets", {})
    api_report.print_tables(rows)
    api_report.print_verdict(result["summary"])
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    note = (
        f"{result['machine']['cpus']} cores; gateway {args.workers} worker(s); LiteLLM "
        f"{version}, {litellm_proxy.WORKERS} worker, no DB; upstream "
        f"{FIRST_TOKEN_MS:g} ms + {TOKENS} tokens {TOKEN_INTERVAL_MS:g} ms apart; "
        f"load avg {result['load_average_at_start']}"
    )
    api_report.draw(rows, args.output.with_suffix(".png"), note)
    print(f"wrote {args.output} in {result['elapsed_seconds']} s")


if __name__ == "__main__":
    main()
