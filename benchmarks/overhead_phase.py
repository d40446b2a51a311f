"""One timed phase of ``gateway_overhead`` and what it cost each party; the profiled phase.

The gateway's CPU and resident memory are its whole process tree's (``procfs``): with
``serve --workers N``, the supervisor and every worker.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from benchmarks import chat_load, processes, procfs
from benchmarks.chat_load import Chat, PhaseStats
from benchmarks.overhead_report import phase_json
from benchmarks.profile_summary import summarize as summarize_profile
from benchmarks.scratch import admin


async def _backends(database: str) -> list[int]:
    """PIDs of the PostgreSQL backends connected to the scratch database."""
    rows = await admin(f"SELECT pid FROM pg_stat_activity WHERE datname = '{database}'")
    return [row[0] for row in rows]


async def run_phase(
    database: str,
    label: str,
    chat: Chat,
    rate: float,
    seconds: float,
    gateway: processes.Gateway,
    upstream: processes.FakeUpstream,
) -> PhaseStats:
    load_before = procfs.load_average()
    backends = procfs.cpu_by_pid(await _backends(database))
    cpu_before = procfs.sample_cpu(gateway.pid, upstream.process.pid)
    began = time.monotonic()
    async with procfs.rss_watch(gateway.pid) as rss:
        start, outcomes = await chat_load.open_loop(chat, rate, seconds)
    elapsed = time.monotonic() - began
    cpu_after = procfs.sample_cpu(gateway.pid, upstream.process.pid)
    backends_after = procfs.cpu_by_pid(await _backends(database))
    postgres = sum(s - backends.get(pid, 0.0) for pid, s in backends_after.items())
    stats = chat_load.summarize(start, seconds, outcomes)
    stats.extra.update(
        cores={
            **procfs.cores_used(cpu_before, cpu_after, elapsed),
            "postgres": round(postgres / elapsed, 2),
        },
        gateway_cpu_ms_per_chat=round(
            (cpu_after.gateway - cpu_before.gateway) * 1000 / max(1, stats.chats), 1
        ),
        load_cpu_ms_per_chat=round(
            (cpu_after.load - cpu_before.load) * 1000 / max(1, stats.chats), 1
        ),
        gateway_rss_mib={"max": round(max(rss) / 1024, 1), "end": round(rss[-1] / 1024, 1)},
        load_average={"before": load_before, "after": procfs.load_average()},
    )
    print(
        f"  {label:>7} {rate:>5g}/s: {stats.completed}/{stats.chats} ok, "
        f"TTFT p50 {stats.ttft_ms['p50']} p99 {stats.ttft_ms['p99']} ms, "
        f"total p50 {stats.total_ms['p50']} ms, {stats.throughput}/s, "
        f"{stats.deltas_per_chat} deltas/chat, "
        f"errors {stats.errors or 0}, cores {stats.extra['cores']}, CPU ms/chat: gateway "
        f"{stats.extra['gateway_cpu_ms_per_chat']} load {stats.extra['load_cpu_ms_per_chat']}",
        flush=True,
    )
    await asyncio.sleep(chat_load.SETTLE_SECONDS)
    return stats


def saturated(rate: float, stats: PhaseStats, added_ttft_p99: float) -> bool:
    return stats.error_rate > 0.05 or stats.throughput < 0.85 * rate or added_ttft_p99 > 1000


# -- profile --------------------------------------------------------------------------------


PROFILE_HZ = 200


async def profile_phase(
    database: str,
    py_spy: str,
    rate: float,
    seconds: float,
    chat: Chat,
    gateway: processes.Gateway,
    upstream: processes.FakeUpstream,
    out: Path,
) -> dict[str, Any]:
    """One gateway phase under ``py-spy record`` (non-blocking), from start to last chat;
    ``--subprocesses`` samples the workers too (the supervisor alone only waits)."""
    recorder = await asyncio.create_subprocess_exec(
        py_spy,
        "record",
        "--pid",
        str(gateway.pid),
        "--subprocesses",
        "--rate",
        str(PROFILE_HZ),
        "--nonblocking",
        "--format",
        "raw",
        "--output",
        str(out),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    await asyncio.sleep(1.0)
    stats = await run_phase(database, "profile", chat, rate, seconds, gateway, upstream)
    recorder.send_signal(signal.SIGINT)
    await recorder.wait()
    if not await asyncio.to_thread(out.exists):
        return {"error": "py-spy wrote nothing"}
    summary = summarize_profile(out)
    per_chat = 1000 / PROFILE_HZ / stats.chats
    for key in ("by_library", "self", "gateway_inclusive"):
        for entry in summary[key]:
            entry["cpu_ms_per_chat"] = round(entry["samples"] * per_chat, 2)
    return {
        "rate": rate,
        "seconds": seconds,
        "sampling_hz": PROFILE_HZ,
        "sampled_cpu_ms_per_chat": round(summary["samples"] * per_chat, 1),
        "phase": phase_json(stats),
        **summary,
    }
