"""Gateway overhead: what the gateway adds to a streamed chat, against a direct client (the floor).

    .venv/bin/python -m benchmarks.gateway_overhead            # full run, about 5 minutes
    .venv/bin/python -m benchmarks.gateway_overhead --quick    # about 80 seconds
    .venv/bin/python -m benchmarks.gateway_overhead --workers 2   # serve --workers 2

Starts, on 127.0.0.1: a fake OpenAI upstream in its own process (50 ms to the first token,
then 100 tokens 10 ms apart), and ``llm-gateway serve`` as in production (PostgreSQL in a
scratch database, Redis as the broker, uvicorn with uvloop and httptools, DEBUG off;
``--workers N`` worker processes, every gateway of the run alike). The gateway's CPU and
resident memory are always its whole process tree's: the supervisor and every worker.
Then, in this process (uvloop):

1. SQL statements per chat: a second database setting, ``log_statement = all``, for the
   scratch database only (a first gateway process); the statements PostgreSQL logs for a
   few chats are counted and classified. That gateway is then replaced by a clean one.
2. Memory at rest: the gateway's resident memory (VmRSS) before and after ``--idle``
   websockets each holding one ``messageEvents`` subscription on an idle dialog.
3. For each arrival rate: an open-loop phase of direct chats with the OpenAI SDK (the
   floor), then one of gateway chats (``chat_load``), each ``--seconds`` long, every chat
   from its own user and dialog, made before the timed phases. Added time = the gateway's
   percentile minus the floor's at the same rate. Stops after the first rate where the
   gateway saturates (errors, falling throughput, or added p99 TTFT over a second).
4. With ``--profile-rate R``, one more gateway phase at R under ``py-spy record``
   (``--subprocesses``: the workers are sampled too).

Prints a table and writes benchmarks/results/gateway_overhead.json and .png. The numbers
depend on what else runs on the machine: the load average is recorded with each phase.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import openai
import uvloop
from redis.asyncio import Redis

from benchmarks import chat_load, processes, procfs
from benchmarks.chat_load import GatewayTarget, Users, direct_chats, gateway_chats
from benchmarks.fake_upstream import TOKEN_TEXT
from benchmarks.idle_memory import IdleSocket, extra_dialogs, measure_idle
from benchmarks.overhead_phase import profile_phase, run_phase, saturated
from benchmarks.overhead_report import added, code_version, draw, machine, phase_json, print_table
from benchmarks.scratch import MODEL, SECRET, admin, make_users, scratch_database
from benchmarks.sql_count import measure_sql
from tests.fakes import DEFAULT_OPENAI_KEY

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
RESULTS = Path(__file__).parent / "results"
FIRST_TOKEN_MS = 50.0
TOKENS = 100
TOKEN_INTERVAL_MS = 10.0


# -- main --------------------------------------------------------------------------------


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    rates = [float(r) for r in args.rates.split(",") if r and r != "none"]
    needed = (
        int(sum(rates) * args.seconds)
        + args.idle
        + args.idle // 100
        + 1
        + args.sql_chats
        + 5
        + 20
        + int((args.profile_rate or 0) * args.seconds)
    )
    workdir = Path(tempfile.mkdtemp(prefix="llmgw-overhead-"))
    result: dict[str, Any] = {
        "benchmark": "gateway overhead: open-loop chats through the gateway vs direct",
        "machine": machine(),
        "code": code_version(),
        "load_average_at_start": procfs.load_average(),
        "upstream": {
            "first_token_ms": FIRST_TOKEN_MS,
            "tokens": TOKENS,
            "token_interval_ms": TOKEN_INTERVAL_MS,
        },
        "seconds_per_phase": args.seconds,
        "workers": args.workers,
        "variant": args.variant or "as committed",
        "websocket_compression": "none" if args.no_deflate else "permessage-deflate offered",
    }
    print(
        f"gateway overhead: {args.workers} worker process(es), rates {args.rates}/s, "
        f"{args.seconds:g} s per phase, variant {result['variant']}",
        flush=True,
    )
    started = time.monotonic()
    upstream = await processes.start_fake(FIRST_TOKEN_MS, TOKENS, TOKEN_INTERVAL_MS)
    redis = Redis.from_url(REDIS_URL)
    limits = httpx.Limits(max_connections=2000, max_keepalive_connections=2000)
    try:
        async with (
            scratch_database() as (name, database_url),
            httpx.AsyncClient(limits=limits, timeout=chat_load.CHAT_TIMEOUT_SECONDS) as http,
            openai.AsyncOpenAI(
                api_key=DEFAULT_OPENAI_KEY, base_url=upstream.base_url, max_retries=0
            ) as direct,
        ):
            result["postgres"] = (await admin("SHOW server_version"))[0][0]
            result["redis"] = (await redis.info("server"))["redis_version"]
            made = time.monotonic()
            users = Users(await make_users(database_url, needed))
            print(f"{needed} users and dialogs in {time.monotonic() - made:.1f} s", flush=True)
            env = processes.gateway_env(database_url, REDIS_URL, SECRET, upstream.base_url)
            compression = None if args.no_deflate else "deflate"
            if args.sql_chats:
                result["sql"] = await measure_sql(
                    name,
                    env,
                    workdir,
                    upstream,
                    users,
                    http,
                    args.sql_chats,
                    args.variant,
                    TOKEN_TEXT * TOKENS,
                    args.workers,
                )
            if args.idle:
                own = [IdleSocket(u.token, [u.dialog_id]) for u in users.take(args.idle)]
                shared = await extra_dialogs(
                    database_url, users.take(max(1, args.idle // 100)), min(100, args.idle)
                )
                measured = [("idle", own), ("idle_shared_sockets", shared)]
                for key, sockets in measured[:1] if args.quick else measured:
                    gateway = await processes.start_gateway(
                        env, workdir, key, args.variant, args.workers
                    )
                    try:
                        result[key] = await measure_idle(gateway, sockets, redis, compression)
                    finally:
                        await processes.stop(gateway.process)
            gateway = await processes.start_gateway(
                env, workdir, "gateway", args.variant, args.workers
            )
            http.base_url = httpx.URL(gateway.base_url)
            target = GatewayTarget(gateway.ws_url, http, TOKEN_TEXT * TOKENS, compression)
            try:
                await chat_load.open_loop(gateway_chats(target, users.take(10)), 5, 2)  # warm
                await chat_load.open_loop(direct_chats(direct, MODEL, TOKEN_TEXT * TOKENS), 5, 2)
                await asyncio.sleep(chat_load.SETTLE_SECONDS)
                rows: list[dict[str, Any]] = []
                for rate in rates:
                    floor = await run_phase(
                        name,
                        "direct",
                        direct_chats(direct, MODEL, TOKEN_TEXT * TOKENS),
                        rate,
                        args.seconds,
                        gateway,
                        upstream,
                    )
                    chats = gateway_chats(target, users.take(round(rate * args.seconds)))
                    through = await run_phase(
                        name, "gateway", chats, rate, args.seconds, gateway, upstream
                    )
                    added_ttft = added(through.ttft_ms, floor.ttft_ms)
                    row = {
                        "rate": rate,
                        "added_ttft_ms": added_ttft,
                        "added_total_ms": added(through.total_ms, floor.total_ms),
                        "gateway": phase_json(through),
                        "floor": phase_json(floor),
                    }
                    rows.append(row)
                    if saturated(rate, through, added_ttft["p99"]):
                        print(f"saturated at {rate:g}/s; stopping", flush=True)
                        break
                result["rates"] = rows
                if args.profile_rate:
                    py_spy = args.py_spy or shutil.which("py-spy")
                    if py_spy is None:
                        print("no py-spy: skipping the profile", flush=True)
                    else:
                        out = workdir / "profile.txt"
                        print(f"py-spy profile: {out}", flush=True)
                        chats = gateway_chats(
                            target, users.take(round(args.profile_rate * args.seconds))
                        )
                        result["profile"] = await profile_phase(
                            name,
                            py_spy,
                            args.profile_rate,
                            args.seconds,
                            chats,
                            gateway,
                            upstream,
                            out,
                        )
            finally:
                code = await processes.stop(gateway.process)
                log = gateway.log.read_text(errors="replace")
                result["gateway_log"] = {
                    "exit_code": code,
                    "tracebacks": log.count("Traceback"),
                    "warnings": log.count(" WARNING "),
                    "errors": log.count(" ERROR "),
                }
    finally:
        await redis.aclose()
        await processes.stop(upstream.process)
    result["elapsed_seconds"] = round(time.monotonic() - started, 1)
    result["load_average_at_end"] = procfs.load_average()
    if args.profile_rate or result.get("gateway_log", {}).get("tracebacks"):
        print(f"gateway logs (and any profile) kept in {workdir}", flush=True)
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a short run (about a minute)")
    parser.add_argument(
        "--rates", help="arrival rates, chats/s (default 1,2,4,6,8,10,15,20,30,40,50,60)"
    )
    parser.add_argument("--seconds", type=float, help="length of each phase (default 10)")
    parser.add_argument("--idle", type=int, help="idle subscriptions to hold (default 1000)")
    parser.add_argument("--sql-chats", type=int, help="chats counted for SQL (default 20)")
    parser.add_argument("--profile-rate", type=float, help="also profile one phase at this rate")
    parser.add_argument("--py-spy", help="path of py-spy (default: on PATH)")
    parser.add_argument(
        "--workers", type=int, default=1, help="gateway worker processes (serve --workers N)"
    )
    parser.add_argument(
        "--variant",
        default="",
        help="candidate changes to patch in (benchmarks.gateway_variants), e.g. tracemalloc",
    )
    parser.add_argument(
        "--no-deflate",
        action="store_true",
        help="websocket clients offer no permessage-deflate (browsers do offer it)",
    )
    parser.add_argument("--output", type=Path, default=RESULTS / "gateway_overhead.json")
    args = parser.parse_args()
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    quick = args.quick
    args.rates = args.rates or ("4,8" if quick else "1,2,4,6,8,10,15,20,30,40,50,60")
    args.seconds = args.seconds or (4.0 if quick else 10.0)
    args.idle = args.idle if args.idle is not None else (200 if quick else 1000)
    args.sql_chats = args.sql_chats if args.sql_chats is not None else (10 if quick else 20)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        result = runner.run(main_async(args))
    rows = result.get("rates", [])
    print()
    print_table(rows)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    if rows:
        note = (
            f"{result['machine']['cpus']} cores, {args.workers} gateway worker(s), upstream "
            f"{FIRST_TOKEN_MS:g} ms to first token + {TOKENS} tokens {TOKEN_INTERVAL_MS:g} ms "
            f"apart; load avg at start {result['load_average_at_start']}"
        )
        draw(rows, args.output.with_suffix(".png"), note)
    print(f"wrote {args.output} in {result['elapsed_seconds']} s")


if __name__ == "__main__":
    main()
