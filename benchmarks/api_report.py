"""The API-overhead results: one table per target, the issue's verdict, the chart.

A target *sustains* a rate when that phase had no error, an added p99 TTFT under
``SUSTAINED_P99_MS`` and was not saturated (``gateway_overhead.saturated``). The issue's
target: the gateway's highest sustained rate is at least ``TARGET_RATIO`` × LiteLLM's,
and at a rate both sustain (the highest such) LiteLLM spends at least ``TARGET_RATIO`` ×
the gateway's CPU per chat (process trees; the gateway's PostgreSQL backends are shown
besides, LiteLLM runs with no database).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from benchmarks.chart import Reference, Series, line_chart

SUSTAINED_P99_MS = 100.0
TARGET_RATIO = 5.0
NAMES = {"gateway": "gateway", "litellm": "LiteLLM"}


def highest_sustained(rows: list[dict[str, Any]]) -> float | None:
    return max((r["rate"] for r in rows if r["sustained"]), default=None)


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, 2)


def verdict(targets: dict[str, list[dict[str, Any]]], rates: list[float]) -> dict[str, Any]:
    gateway, litellm = targets["gateway"], targets["litellm"]
    best = {name: highest_sustained(rows) for name, rows in targets.items()}
    top = max(rates, default=None)
    both = sorted(
        {r["rate"] for r in gateway if r["sustained"]}
        & {r["rate"] for r in litellm if r["sustained"]}
    )
    cpu: dict[str, Any] | None = None
    if both:
        at = both[-1]
        gw = next(r["phase"] for r in gateway if r["rate"] == at)
        lt = next(r["phase"] for r in litellm if r["rate"] == at)
        with_pg = gw["cpu_ms_per_chat"] + gw["postgres_cpu_ms_per_chat"]
        cpu = {
            "rate": at,
            "gateway_ms_per_chat": gw["cpu_ms_per_chat"],
            "gateway_postgres_ms_per_chat": gw["postgres_cpu_ms_per_chat"],
            "litellm_ms_per_chat": lt["cpu_ms_per_chat"],
            "litellm_over_gateway": _ratio(lt["cpu_ms_per_chat"], gw["cpu_ms_per_chat"]),
            "litellm_over_gateway_with_postgres": _ratio(lt["cpu_ms_per_chat"], with_pg),
        }
    rate_ratio = _ratio(best["gateway"], best["litellm"])
    cpu_ratio = cpu["litellm_over_gateway"] if cpu else None
    return {
        "rule": f"0 errors, added p99 TTFT < {SUSTAINED_P99_MS:g} ms, not saturated",
        "highest_sustained_rate": best,
        "gateway_sustained_highest_rate_tried": best["gateway"] == top,
        "litellm_sustained_no_rate": best["litellm"] is None,
        "rate_ratio": rate_ratio,
        "cpu": cpu,
        "target_met": {
            "rate": rate_ratio is not None and rate_ratio >= TARGET_RATIO,
            "cpu": cpu_ratio is not None and cpu_ratio >= TARGET_RATIO,
        },
    }


def print_tables(targets: dict[str, list[dict[str, Any]]]) -> None:
    head = (
        f"{'rate':>5} {'ok/total':>9} | {'added TTFT p50':>14} {'p99':>7} | "
        f"{'added total p50':>15} | {'chats/s':>7} | {'CPU ms/chat':>11} {'+pg':>5} | "
        f"{'RSS MiB':>7} | sustained"
    )
    for name, rows in targets.items():
        print(f"\n{NAMES[name]} (added = {NAMES[name]} - direct, same rate)")
        print(head)
        print("-" * len(head))
        for row in rows:
            phase = row["phase"]
            print(
                f"{row['rate']:>5g} {phase['completed']:>4}/{phase['chats']:<4} | "
                f"{row['added_ttft_ms']['p50']:>14} {row['added_ttft_ms']['p99']:>7} | "
                f"{row['added_total_ms']['p50']:>15} | {phase['completed_per_second']:>7} | "
                f"{phase['cpu_ms_per_chat']:>11} {phase['postgres_cpu_ms_per_chat']:>5} | "
                f"{phase['rss_mib']['max']:>7} | "
                f"{'yes' if row['sustained'] else 'no'}"
                f"{' (saturated)' if row['saturated'] else ''}"
                f"{'' if not phase['errors'] else ' ' + str(phase['errors'])}"
            )


def print_verdict(summary: dict[str, Any]) -> None:
    best = summary["highest_sustained_rate"]

    def rate(value: float | None) -> str:
        return "none" if value is None else f"{value:g}/s"

    print(f"\nhighest sustained rate ({summary['rule']}):")
    print(f"  gateway {rate(best['gateway'])}, LiteLLM {rate(best['litellm'])}")
    ratio = summary["rate_ratio"]
    bound = "≥ " if summary["gateway_sustained_highest_rate_tried"] else ""
    shown = "n/a (LiteLLM sustained no rate)" if ratio is None else f"{bound}{ratio:g}×"
    print(f"  gateway ÷ LiteLLM: {shown} (target ≥ {TARGET_RATIO:g}×)")
    cpu = summary["cpu"]
    if cpu is None:
        print("CPU per chat: no rate sustained by both")
    else:
        print(
            f"CPU per chat at {cpu['rate']:g}/s: LiteLLM {cpu['litellm_ms_per_chat']} ms, "
            f"gateway {cpu['gateway_ms_per_chat']} ms (+ PostgreSQL "
            f"{cpu['gateway_postgres_ms_per_chat']} ms); LiteLLM ÷ gateway: "
            f"{cpu['litellm_over_gateway']}× ({cpu['litellm_over_gateway_with_postgres']}× "
            f"counting PostgreSQL) (target ≥ {TARGET_RATIO:g}×)"
        )
    met = summary["target_met"]
    print(f"target met: rate {'yes' if met['rate'] else 'no'}, CPU {'yes' if met['cpu'] else 'no'}")


def draw(targets: dict[str, list[dict[str, Any]]], path: Path, note: str) -> None:
    def points(name: str, q: str) -> list[tuple[float, float]]:
        return [
            (r["rate"], max(r["added_ttft_ms"][q], 0.1))
            for r in targets[name]
            if not math.isnan(r["added_ttft_ms"][q])
        ]

    line_chart(
        path,
        title="/v1/chat/completions: added time to first token",
        x_label="arrival rate (chats/s)",
        y_label="added TTFT, target - direct (ms, log)",
        series=[
            Series("gateway p50", (31, 119, 180), points("gateway", "p50")),
            Series("gateway p99", (23, 190, 207), points("gateway", "p99")),
            Series("LiteLLM p50", (214, 39, 40), points("litellm", "p50")),
            Series("LiteLLM p99", (255, 127, 14), points("litellm", "p99")),
        ],
        references=[Reference("p99 100 ms", (120, 120, 120), SUSTAINED_P99_MS)],
        notes=[note],
    )
