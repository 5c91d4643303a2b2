"""What recording one request costs on the hot path: ``Telemetry.observe(record)`` (the
one call in ``Exchange.finish``), and one /metrics render, measured in-process.

    python bench/observability/observe_cost.py

Prints nanoseconds per ``observe`` for a typical label mix (metrics on, tracing off), and
the time to render the exposition after the run. Timings belong here, never in tests.
"""

from __future__ import annotations

import random
import time

from prometheus_client import CollectorRegistry, Counter

from hybridinference.observability.metrics import RequestMetrics, model_labels
from hybridinference.schemas.records import Attempt, RequestRecord

MODELS = [f"model-{i}" for i in range(8)]
ROUTES = [f"provider-{i}/m" for i in range(4)]
STATUSES = [200] * 18 + [429, 502]


def records(count: int, rng: random.Random) -> list[RequestRecord]:
    out = []
    for i in range(count):
        status = rng.choice(STATUSES)
        route = rng.choice(ROUTES)
        out.append(
            RequestRecord(
                request_id=f"r{i}",
                created_at=0.0,
                endpoint="chat",
                key_id="k1",
                model=rng.choice(MODELS),
                route=route,
                status=status,
                error_type=None if status == 200 else "upstream_error",
                latency_ms=rng.uniform(50, 3000),
                ttft_ms=rng.uniform(20, 900),
                prompt_tokens=100,
                completion_tokens=200,
                total_tokens=300,
                cost=0.0003,
                stream=True,
                attempts=(Attempt(route, "ok" if status == 200 else "upstream_error", 10.0, 200),),
            )
        )
    return out


def counter_inc_ns(count: int = 200_000) -> float:
    """One bare prometheus Counter.inc on this machine, right now: the unit to compare with
    (a shared, loaded machine slows everything alike)."""
    counter = Counter("calibration", "calibration", registry=CollectorRegistry())
    started = time.perf_counter_ns()
    for _ in range(count):
        counter.inc()
    return (time.perf_counter_ns() - started) / count


def main() -> None:
    unit = counter_inc_ns()
    metrics = RequestMetrics(model_labels((m, ()) for m in MODELS))
    batch = records(200_000, random.Random(7))
    for record in batch[:1000]:  # warm the label caches
        metrics.observe(record)
    started = time.perf_counter_ns()
    for record in batch:
        metrics.observe(record)
    elapsed = time.perf_counter_ns() - started
    per = elapsed / len(batch)
    print(f"observe: {per:.0f} ns per request ({len(batch)} requests) = {per / unit:.1f} x a bare")
    print(f"  Counter.inc ({unit:.0f} ns on this machine now)")
    started = time.perf_counter_ns()
    body, _ = metrics.render()
    print(f"render: {(time.perf_counter_ns() - started) / 1e6:.2f} ms, {len(body)} bytes")


if __name__ == "__main__":
    main()
