"""The scrape endpoint: every worker's metrics added up, on ``METRICS_PORT``.

prometheus-client's multiprocess mode: each process writes its values to files of one
directory (``PROMETHEUS_MULTIPROC_DIR``), and the endpoint, run by the serve process,
reads them all at each scrape. prometheus-client decides whether a process writes those
files when it is first imported, so the order matters:

1. ``prepare_multiprocess_dir(settings)``, in the serve process before anything imports
   prometheus-client (and before any worker starts: workers inherit the variable);
2. ``start_metrics_server(settings)``, once the application can be served;
3. in each worker, ``mark_worker_exited()`` as it shuts down (the app's lifespan does), so
   its gauges (active generations, subscriptions, pool) stop counting.

Nothing of this module imports prometheus-client at import time.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

from llm_gateway.settings import ConfigError, Settings

logger = logging.getLogger("llm_gateway.metrics")

MULTIPROC_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def prepare_multiprocess_dir(settings: Settings) -> Path | None:
    """Point prometheus-client at an empty directory for this run; None when metrics are off.

    The operator's ``PROMETHEUS_MULTIPROC_DIR`` is used when set (created if missing, its
    ``*.db`` files of an earlier run removed: a dead process's counters would be added to
    the new run's); otherwise a new temporary directory, removed when the process exits.
    Must run before prometheus-client is imported in this process.
    """
    if settings.metrics_port is None:
        return None
    if "prometheus_client" in sys.modules and not os.environ.get(MULTIPROC_DIR_VARIABLE):
        raise RuntimeError(
            "prometheus_client was imported before PROMETHEUS_MULTIPROC_DIR was set: "
            "call prepare_multiprocess_dir() first"
        )
    given = os.environ.get(MULTIPROC_DIR_VARIABLE)
    if given:
        directory = Path(given)
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.db"):
            stale.unlink(missing_ok=True)
    else:
        directory = Path(tempfile.mkdtemp(prefix="llm-gateway-metrics-"))
        atexit.register(shutil.rmtree, directory, ignore_errors=True)
        os.environ[MULTIPROC_DIR_VARIABLE] = str(directory)
    return directory


def start_metrics_server(settings: Settings) -> None:
    """Serve ``/metrics`` (any path, in fact) on METRICS_HOST:METRICS_PORT, in a thread.

    Every process's values are read from the multiprocess directory at each scrape;
    raises ConfigError when the port cannot be bound.
    """
    if settings.metrics_port is None:
        return
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    try:
        start_http_server(settings.metrics_port, settings.metrics_host, registry)
    except OSError as exc:
        raise ConfigError(
            f"METRICS_PORT: cannot listen on {settings.metrics_host}:{settings.metrics_port} "
            f"({exc.strerror or exc})"
        ) from None
    logger.info("metrics on http://%s:%d/metrics", settings.metrics_host, settings.metrics_port)


def mark_worker_exited(pid: int | None = None) -> None:
    """Drop a process's live gauges from the scrape (this process's when ``pid`` is None).

    For a worker's shutdown, and for a supervisor whose worker died without one.
    """
    if not os.environ.get(MULTIPROC_DIR_VARIABLE):
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid if pid is not None else os.getpid())  # type: ignore[no-untyped-call]
