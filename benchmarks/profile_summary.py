"""Read a py-spy ``--format raw`` profile (collapsed stacks) and say where the time went.

    .venv/bin/python -m benchmarks.profile_summary PROFILE.txt [--top 25]

Each line of the profile is ``frame;frame;…;leaf COUNT``, a frame being
``function (path/file.py:line)``. Reported: the share of samples per library (by the
innermost frame that belongs to one), the functions with the most self time, and the
gateway's own functions by inclusive time (any sample with that function on the stack).
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

_FRAME = re.compile(r"^(?P<function>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")

LIBRARIES = (
    "llm_gateway",
    "strawberry",
    "graphql",
    "sqlalchemy",
    "asyncpg",
    "websockets",
    "uvicorn",
    "starlette",
    "redis",
    "openai",
    "httpx2",
    "httpx",
    "httpcore",
    "h11",
    "anyio",
    "pydantic",
    "pydantic_core",
    "jwt",
    "json",
    "logging",
    "asyncio",
    "uvloop",
    "aiodataloader",
)


def _split(frame: str) -> tuple[str, str]:
    match = _FRAME.match(frame)
    if match is None:
        return frame, ""
    return match["function"], match["file"]


def library_of(path: str) -> str | None:
    parts = path.replace("\\", "/").split("/")
    if "site-packages" in parts:
        parts = parts[parts.index("site-packages") + 1 :]
    for part in parts:
        name = part.removesuffix(".py")
        if name in LIBRARIES:
            return name
    return None


def summarize(path: Path, top: int = 25) -> dict[str, Any]:
    by_library: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    gateway_inclusive: Counter[str] = Counter()
    total = 0
    for raw in path.read_text().splitlines():
        stack, _, count_text = raw.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [_split(f) for f in stack.split(";")]
        function, file = frames[-1]
        self_time[f"{function} ({file})"] += count
        library = next(
            (lib for _, f in reversed(frames) if (lib := library_of(f)) is not None), "other"
        )
        by_library[library] += count
        seen = {f"{fn} ({f})" for fn, f in frames if library_of(f) == "llm_gateway"}
        for key in seen:
            gateway_inclusive[key] += count

    def share(counter: Counter[str], limit: int) -> list[dict[str, Any]]:
        return [
            {"name": name, "samples": n, "percent": round(100 * n / total, 1)}
            for name, n in counter.most_common(limit)
        ]

    return {
        "samples": total,
        "by_library": share(by_library, len(by_library)),
        "self": share(self_time, top),
        "gateway_inclusive": share(gateway_inclusive, top),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    print(json.dumps(summarize(args.profile, args.top), indent=2))


if __name__ == "__main__":
    main()
