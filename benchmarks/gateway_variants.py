"""``llm-gateway`` with candidate optimisations patched in at start-up, to measure them first.

    BENCH_VARIANTS=coalesce,tracemalloc .venv/bin/python -m benchmarks.gateway_variants \
        serve --port 8001

Each variant is what a change to ``llm_gateway`` would do, applied by monkeypatching so the
benchmark can show before and after numbers before anyone edits the code
(``gateway_overhead --variant``). Nothing here is for production. Variants that have been
made for real are gone from here: ``documents`` (``llm_gateway.schema.documents``),
``no_pre_ping`` (``make_engine``), ``raw_openai`` (the OpenAI adapter's own stream reader)
and ``gc`` (``llm-gateway serve``, which also turns off permessage-deflate).

- ``coalesce``: publish an answer's deltas at most every ``BENCH_COALESCE_MS`` (default
  50) ms: the first at once, later ones merged (their texts joined, the last ``seq``).
  Any other event of the answer first flushes what is pending, so order holds.
- ``tracemalloc``: a diagnostic, not a change: the first SIGUSR1 starts tracing
  allocations (10 frames); each SIGUSR1 writes a snapshot to ``BENCH_TRACEMALLOC_DIR``
  (default: the working directory).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from typing import Any

VARIANTS = frozenset(v for v in os.environ.get("BENCH_VARIANTS", "").split(",") if v)
KNOWN = frozenset({"coalesce", "tracemalloc"})


# -- coalesce --------------------------------------------------------------------------------


def _patch_coalesce() -> None:
    from llm_gateway.services import generation

    interval = float(os.environ.get("BENCH_COALESCE_MS", "50")) / 1000
    original = generation.GenerationManager._publish

    class Pending:
        def __init__(self) -> None:
            self.lock = asyncio.Lock()
            self.texts: list[str] = []
            self.seq = 0
            self.last = 0.0
            self.timer: asyncio.TimerHandle | None = None

    pending: dict[Any, Pending] = {}

    async def flush(manager: Any, running: Any, state: Pending) -> None:
        if state.timer is not None:
            state.timer.cancel()
            state.timer = None
        if state.texts:
            event = {"type": "delta", "seq": state.seq, "text": "".join(state.texts)}
            state.texts.clear()
            state.last = time.monotonic()
            await original(manager, running, event)

    async def publish(manager: Any, running: Any, event: dict[str, Any]) -> None:
        key = running.job.message_id
        state = pending.setdefault(key, Pending())
        async with state.lock:
            if event.get("type") != "delta":
                await flush(manager, running, state)
                await original(manager, running, event)
                if event.get("type") in ("completed", "failed"):
                    pending.pop(key, None)
                return
            state.texts.append(event["text"])
            state.seq = event["seq"]
            wait = state.last + interval - time.monotonic()
            if wait <= 0:
                await flush(manager, running, state)
            elif state.timer is None:

                def later() -> None:
                    async def run() -> None:
                        async with state.lock:
                            state.timer = None
                            await flush(manager, running, state)

                    asyncio.get_running_loop().create_task(run())

                state.timer = asyncio.get_running_loop().call_later(wait, later)

    generation.GenerationManager._publish = publish  # type: ignore[method-assign,assignment]


# -- tracemalloc -----------------------------------------------------------------------------


def _start_tracemalloc() -> None:
    import itertools
    import signal
    import tracemalloc
    from pathlib import Path

    folder = Path(os.environ.get("BENCH_TRACEMALLOC_DIR", "."))
    counter = itertools.count(1)

    def dump(_signal: int, _frame: Any) -> None:
        if not tracemalloc.is_tracing():
            tracemalloc.start(10)  # the first signal starts tracing: start-up stays fast
        tracemalloc.take_snapshot().dump(str(folder / f"snapshot-{next(counter)}.pickle"))

    signal.signal(signal.SIGUSR1, dump)


def main() -> int:
    unknown = VARIANTS - KNOWN
    if unknown:
        print(f"unknown variants: {sorted(unknown)}", file=sys.stderr)
        return 2
    if "coalesce" in VARIANTS:
        _patch_coalesce()
    if "tracemalloc" in VARIANTS:
        _start_tracemalloc()
    from llm_gateway.cli import main as cli_main

    return cli_main(sys.argv[1:])


if __name__ == "__main__":
    raise SystemExit(main())
