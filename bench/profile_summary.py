"""Summarise a py-spy ``--format raw`` (collapsed stacks) profile: the functions with the
most self time and the most inclusive time, as shares of all samples, and the samples
grouped by component (the deepest frame of each stack that belongs to one of
``COMPONENTS``; the table in docs/performance.md).

    python bench/profile_summary.py profile.raw [--top 30]
"""

from __future__ import annotations

import argparse
import collections
import re
from pathlib import Path

#: "function (path/to/file.py:123)" -> "function (file.py)"
FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^:()]+)(?::\d+)?\)$")


#: component → path fragments of its frames; the first match of the deepest frame wins
COMPONENTS: dict[str, tuple[str, ...]] = {
    "upstream HTTP client (adapters/h1.py, upstream.py, http.py)": (
        "adapters/h1.py",
        "adapters/upstream.py",
        "adapters/http.py",
    ),
    "adapter (openai_compat, profiles)": ("adapters/openai_compat.py", "adapters/profiles.py"),
    "uvicorn (httptools parsing, ASGI send/receive)": ("uvicorn/",),
    "routing manager (plan, candidates, race, openers, statistics)": ("hybridinference/routing/",),
    "gateway middleware and direct lane": (
        "gateway/middleware.py",
        "gateway/auth_throttle.py",
        "gateway/fastpath.py",
        "observability/telemetry.py",
        "gateway/forwarded.py",
    ),
    "Prometheus metrics": ("prometheus_client/", "observability/metrics.py"),
    "endpoint and exchange (inference, exchange, responses, streaming)": (
        "gateway/inference.py",
        "gateway/exchange.py",
        "gateway/responses.py",
        "gateway/streaming.py",
        "gateway/reasoning.py",
        "gateway/deps.py",
        "routing/trace.py",
    ),
    "body read, JSON, pydantic validation": ("gateway/body.py", "pydantic", "orjson"),
    "request log (record, queue, SQLite writer thread)": (
        "hybridinference/storage/",
        "schemas/records.py",
        "sqlite3",
        "concurrent/futures",
        "threading.py",
    ),
    "limits (per key, provider accounts)": ("hybridinference/limits/", "gateway/limits.py"),
    "auth (HMAC of the key, cache)": ("gateway/auth.py", "hmac.py"),
    "FastAPI/Starlette layers": ("fastapi/", "starlette/"),
    "asyncio/uvloop (tasks, timers, the loop itself)": ("asyncio/", "uvloop", "runners.py"),
}


def component(frames: list[str]) -> str:
    for frame in reversed(frames):
        for name, parts in COMPONENTS.items():
            if any(part in frame for part in parts):
                return name
    return "other"


def short(frame: str) -> str:
    match = FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    path = match["file"]
    for marker in ("site-packages/", "src/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{match['func']} ({path})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("raw", type=Path)
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    own: collections.Counter[str] = collections.Counter()
    groups: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in args.raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        groups[component(stack.split(";"))] += n
        frames = [short(f) for f in stack.split(";")]
        total += n
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    print(f"{total} samples\n\n| component | share of samples |\n|---|---|")
    for name, n in groups.most_common():
        print(f"| {name} | {100 * n / total:.0f} % |")
    print("\nself time:")
    for frame, n in own.most_common(args.top):
        print(f"{100 * n / total:5.1f}%  {frame}")
    print("\ninclusive time:")
    for frame, n in inclusive.most_common(args.top):
        print(f"{100 * n / total:5.1f}%  {frame}")


if __name__ == "__main__":
    main()
