"""The gateway-overhead results: JSON rows, the printed table, the chart, the machine."""

from __future__ import annotations

import math
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

from benchmarks import processes
from benchmarks.chart import Reference, Series, line_chart
from benchmarks.chat_load import PhaseStats


def phase_json(stats: PhaseStats) -> dict[str, Any]:
    return {
        "chats": stats.chats,
        "completed": stats.completed,
        "error_rate": round(stats.error_rate, 4),
        "errors": stats.errors,
        "ttft_ms": stats.ttft_ms,
        "total_ms": stats.total_ms,
        "send_message_ms": stats.send_message_ms,
        "start_lag_ms": stats.start_lag_ms,
        "completed_per_second": stats.throughput,
        "deltas_per_chat": stats.deltas_per_chat,
        **stats.extra,
    }


def added(gateway: dict[str, float], floor: dict[str, float]) -> dict[str, float]:
    return {q: round(gateway[q] - floor[q], 2) for q in ("p50", "p95", "p99")}


def code_version() -> dict[str, Any]:
    """The commit measured, and whether llm_gateway/ had uncommitted changes."""

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=processes.REPOSITORY, capture_output=True, text=True, check=False
        )
        return done.stdout.strip()

    return {
        "commit": git("rev-parse", "--short", "HEAD"),
        "llm_gateway_modified": bool(
            git("--no-optional-locks", "status", "--porcelain", "--", "llm_gateway")
        ),
    }


def machine() -> dict[str, Any]:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(int(memory) / 1024**2, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def print_table(rows: list[dict[str, Any]]) -> None:
    head = (
        f"{'rate':>5} {'floor p50':>9} | {'added TTFT p50':>14} {'p95':>7} {'p99':>7} | "
        f"{'added total p50':>15} {'p99':>7} | {'chats/s':>7} {'errors':>6} | "
        f"{'RSS MiB':>7} | {'cores gw/pg/load/all':>20} | load avg"
    )
    print(head)
    print("-" * len(head))
    for row in rows:
        gw = row["gateway"]
        cores = gw["cores"]
        print(
            f"{row['rate']:>5g} {row['floor']['ttft_ms']['p50']:>9} | "
            f"{row['added_ttft_ms']['p50']:>14} {row['added_ttft_ms']['p95']:>7} "
            f"{row['added_ttft_ms']['p99']:>7} | {row['added_total_ms']['p50']:>15} "
            f"{row['added_total_ms']['p99']:>7} | {gw['completed_per_second']:>7} "
            f"{gw['error_rate']:>6.1%} | {gw['gateway_rss_mib']['max']:>7} | "
            f"{cores['gateway']:>4}/{cores['postgres']:>4}/{cores['load']:>4}/"
            f"{cores['machine_busy']:>4} | {gw['load_average']['before']}"
        )


def draw(rows: list[dict[str, Any]], path: Path, note: str) -> None:
    def points(q: str) -> list[tuple[float, float]]:
        return [
            (r["rate"], max(r["added_ttft_ms"][q], 0.1))
            for r in rows
            if not math.isnan(r["added_ttft_ms"][q])
        ]

    line_chart(
        path,
        title="Gateway: added time to first token",
        x_label="arrival rate (chats/s)",
        y_label="added TTFT, gateway - direct (ms, log)",
        series=[
            Series("p50", (31, 119, 180), points("p50")),
            Series("p95", (255, 127, 14), points("p95")),
            Series("p99", (214, 39, 40), points("p99")),
        ],
        references=[
            Reference("p50 target 5 ms", (31, 119, 180), 5),
            Reference("p99 target 25 ms (at 20/s)", (214, 39, 40), 25),
            Reference("p99 100 ms", (120, 120, 120), 100),
        ],
        notes=[note],
    )
