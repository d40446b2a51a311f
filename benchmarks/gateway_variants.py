"""``llm-gateway`` with candidate optimisations patched in at start-up, to measure them first.

    BENCH_VARIANTS=tracemalloc .venv/bin/python -m benchmarks.gateway_variants \
        serve --port 8001

Each variant is what a change to ``llm_gateway`` would do, applied by monkeypatching so the
benchmark can show before and after numbers before anyone edits the code
(``gateway_overhead --variant``). Nothing here is for production. Variants that have been
made for real are gone from here: ``documents`` (``llm_gateway.schema.guards.document_cache``),
``no_pre_ping`` (``make_engine``), ``raw_openai`` (the OpenAI adapter's own stream reader)
and ``gc`` (``llm-gateway serve``, which also turns off permessage-deflate), and
``coalesce`` (``DELTA_COALESCE_MS``).

- ``tracemalloc``: a diagnostic, not a change: the first SIGUSR1 starts tracing
  allocations (10 frames); each SIGUSR1 writes a snapshot to ``BENCH_TRACEMALLOC_DIR``
  (default: the working directory).
"""

from __future__ import annotations

import os
import sys
from typing import Any

VARIANTS = frozenset(v for v in os.environ.get("BENCH_VARIANTS", "").split(",") if v)
KNOWN = frozenset({"tracemalloc"})


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
    if "tracemalloc" in VARIANTS:
        _start_tracemalloc()
    from llm_gateway.cli import main as cli_main

    return cli_main(sys.argv[1:])


if __name__ == "__main__":
    raise SystemExit(main())
