"""What a per-key limit check costs on the request path: admit latency (p50/p99) of the
in-process backend and of the Redis backend (one EVALSHA round trip), sequential and with
50 concurrent callers. Run: .venv/bin/python bench/limits_overhead.py [redis-url]"""

from __future__ import annotations

import asyncio
import secrets
import statistics
import sys
import time

from hybridinference.limits.base import LimitBackend
from hybridinference.limits.estimate import billing_calendar
from hybridinference.limits.memory import MemoryBackend
from hybridinference.limits.model import Admission, KeyLimits
from hybridinference.limits.redis_store import RedisBackend, connect

LIMITS = KeyLimits(rpm=10**9, tpm=10**12, concurrency=10**6, daily_budget=10**6)


def admission() -> Admission:
    return Admission(
        "bench", secrets.token_hex(8), LIMITS, 100, 1000, billing_calendar(time.time())
    )


async def sequential(backend: LimitBackend, n: int) -> list[float]:
    times = []
    for _ in range(n):
        item = admission()
        start = time.perf_counter()
        await backend.admit(item)
        times.append(time.perf_counter() - start)
    return times


async def concurrent(backend: LimitBackend, n: int, width: int = 50) -> float:
    items = iter(range(n))

    async def worker() -> None:
        for _ in items:
            await backend.admit(admission())

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(width)))
    return n / (time.perf_counter() - start)


def report(name: str, times: list[float], rate: float) -> None:
    ordered = sorted(times)
    p50 = statistics.median(ordered) * 1e6
    p99 = ordered[int(len(ordered) * 0.99)] * 1e6
    print(f"{name:8s} admit p50 {p50:7.1f} us  p99 {p99:7.1f} us  50 callers {rate:8.0f}/s")


async def main() -> None:
    url = sys.argv[1] if len(sys.argv) > 1 else "redis://127.0.0.1:6379/0"
    memory = MemoryBackend(time.monotonic, lease_seconds=30)
    report("memory", await sequential(memory, 20_000), await concurrent(memory, 20_000))
    prefix = f"bench-{secrets.token_hex(4)}"
    redis = RedisBackend(connect(url, timeout=2), prefix=prefix, lease_seconds=30)
    await redis.admit(admission())  # load the script
    report("redis", await sequential(redis, 5_000), await concurrent(redis, 5_000))
    client = connect(url, timeout=2)
    keys = [k async for k in client.scan_iter(match=f"{prefix}:*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()
    await redis.aclose()


if __name__ == "__main__":
    asyncio.run(main())
