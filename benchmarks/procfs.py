"""/proc readings of the processes a benchmark watches: CPU seconds, resident memory, load.

A server may be a process tree (``llm-gateway serve --workers N``: a uvicorn supervisor and
N spawned workers), so its CPU and memory are read for the whole tree: the root and every
live descendant, found through the parent PID in each /proc/<pid>/stat (this kernel may
lack /proc/<pid>/task/*/children).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    """Resident memory (VmRSS) of one process, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def _stat(pid: int | str) -> tuple[str, float]:
    """(command name, user + system CPU seconds) of one process."""
    text = Path(f"/proc/{pid}/stat").read_text()
    name = text[text.index("(") + 1 : text.rindex(")")]
    fields = text[text.rindex(")") + 2 :].split()
    return name, (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def cpu_seconds(pid: int) -> float:
    return _stat(pid)[1]


def cpu_by_pid(pids: Iterable[int]) -> dict[int, float]:
    """CPU seconds of each process still alive."""
    seconds = {}
    for pid in pids:
        try:
            seconds[pid] = cpu_seconds(pid)
        except (OSError, ValueError):
            continue
    return seconds


def _cpu_by_name(names: tuple[str, ...]) -> float:
    total = 0.0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            name, seconds = _stat(entry.name)
        except (OSError, ValueError):
            continue  # gone meanwhile
        if name.startswith(names):
            total += seconds
    return total


# -- process trees -------------------------------------------------------------------------


def _table() -> dict[int, tuple[int, float]]:
    """Every live process: (parent PID, CPU seconds of its own and of the children it reaped)."""
    table = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            text = Path(f"/proc/{entry.name}/stat").read_text()
        except OSError:
            continue  # gone meanwhile
        fields = text[text.rindex(")") + 2 :].split()
        table[int(entry.name)] = (int(fields[1]), sum(int(f) for f in fields[11:15]) / CLOCK_TICKS)
    return table


def _tree(root: int, table: dict[int, tuple[int, float]]) -> set[int]:
    """``root`` and its descendants, of those alive in ``table``."""
    tree = {root}
    grew = True
    while grew:
        more = {pid for pid, (ppid, _) in table.items() if ppid in tree} - tree
        tree |= more
        grew = bool(more)
    return tree & table.keys()


def tree_pids(root: int) -> set[int]:
    """PIDs of ``root`` and its live descendants."""
    return _tree(root, _table())


def tree_cpu_seconds(root: int) -> float:
    """CPU seconds of ``root`` and its live descendants, and of the children they reaped
    (so a worker that exits during a phase still counts, through its parent)."""
    table = _table()
    return sum(table[pid][1] for pid in _tree(root, table))


def tree_rss_kib(root: int) -> int:
    """VmRSS summed over ``root`` and its live descendants, in KiB (shared pages count
    once per process, as each worker's own RSS would)."""
    total = 0
    for pid in tree_pids(root):
        try:
            total += rss_kib(pid)
        except (OSError, RuntimeError):
            continue  # gone meanwhile, or a zombie
    return total


def spawned_children(parent: int) -> list[int]:
    """The parent's children started by multiprocessing's 'spawn' (uvicorn's workers); its
    resource tracker, also a child, is not one of them."""
    found = []
    for pid, (ppid, _) in _table().items():
        if ppid != parent:
            continue
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"--multiprocessing-fork" in command.split(b"\0"):
            found.append(pid)
    return sorted(found)


@contextlib.asynccontextmanager
async def rss_watch(pid: int, tree: bool = True) -> AsyncIterator[list[int]]:
    """Samples VmRSS (KiB) every 0.25 s while the block runs: summed over ``pid``'s process
    tree (``tree``, for a server and its workers), else of that one process."""
    read = tree_rss_kib if tree else rss_kib
    samples: list[int] = []

    async def watch() -> None:
        while True:
            samples.append(read(pid))
            await asyncio.sleep(0.25)

    task = asyncio.create_task(watch())
    try:
        yield samples
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        samples.append(read(pid))


# -- the machine and the parties -----------------------------------------------------------


def machine_busy_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    total = sum(fields[:8])
    idle = fields[3] + fields[4]
    return (total - idle) / CLOCK_TICKS, total / CLOCK_TICKS


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


@dataclass(frozen=True, slots=True)
class CpuSample:
    gateway: float  # its whole process tree: the supervisor and every worker
    upstream: float
    load: float
    redis: float
    machine_busy: float


def sample_cpu(gateway_pid: int, upstream_pid: int) -> CpuSample:
    """CPU seconds used so far by each party (Redis: the whole server, shared with others)."""
    busy, _ = machine_busy_seconds()
    return CpuSample(
        gateway=tree_cpu_seconds(gateway_pid),
        upstream=cpu_seconds(upstream_pid),
        load=cpu_seconds(os.getpid()),
        redis=_cpu_by_name(("redis-server",)),
        machine_busy=busy,
    )


def cores_used(before: CpuSample, after: CpuSample, seconds: float) -> dict[str, float]:
    """Average cores each party kept busy between two samples."""
    return {
        f.name: round((getattr(after, f.name) - getattr(before, f.name)) / seconds, 2)
        for f in dataclasses.fields(CpuSample)
    }
