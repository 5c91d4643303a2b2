"""``GET /metrics`` (Prometheus text format) and the readings the gateway's own parts
publish at scrape time: routes (in flight, circuit, probe health, local engine load)
and the request-log writer (queue, spill journal, rows written/dropped).

Read with ``getattr`` on purpose: routing and storage grow these objects independently,
and a missing attribute must mean "no series", never a failed scrape.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from hybridinference.gateway.deps import app_state
from hybridinference.observability.metrics import Reading

if TYPE_CHECKING:
    from hybridinference.state import AppState

# WriterStats field → reading name (fields that do not exist are skipped).
WRITER_COUNTERS: Mapping[str, str] = {
    "written": "log_rows_written",
    "dropped": "log_rows_dropped",
    "lost": "log_rows_lost",
    "journaled": "log_rows_spilled",
    "failed_batches": "log_failed_batches",
    "rejected": "log_rows_rejected",
}
PROBE_UP: Mapping[str, float] = {"up": 1.0, "down": 0.0}  # "unknown": no sample
ENGINE_FIELDS: Mapping[str, str] = {
    "running": "engine_requests_running",
    "waiting": "engine_requests_waiting",
    "kv_usage": "engine_kv_cache_usage_ratio",
}


async def metrics(request: Request) -> Response:
    telemetry = app_state(request).telemetry
    if telemetry is None or telemetry.metrics is None:
        return Response("metrics are disabled\n", status_code=404, media_type="text/plain")
    token = telemetry.metrics_token
    if token is not None:
        presented = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(presented.encode(), token.encode()):
            return Response(
                "a bearer token is required\n",
                status_code=401,
                media_type="text/plain",
                headers={"WWW-Authenticate": "Bearer"},
            )
    telemetry.metrics.refresh()
    body, content_type = await asyncio.to_thread(telemetry.metrics.render)
    return Response(body, media_type=content_type)


def writer_readings(state: AppState) -> Callable[[], Iterator[Reading]]:
    def read() -> Iterator[Reading]:
        writer = state.writer
        yield Reading("log_queue_depth", writer.depth)
        stats = writer.stats
        for field, name in WRITER_COUNTERS.items():
            value = getattr(stats, field, None)
            if isinstance(value, int | float):
                yield Reading(name, value)
        pending = getattr(writer, "journal_pending_bytes", None)
        if isinstance(pending, int | float):
            yield Reading("log_spill_bytes", pending)
        up = getattr(writer, "database_up", None)
        if isinstance(up, bool):
            yield Reading("log_database_up", float(up))

    return read


def routing_readings(state: AppState) -> Callable[[], Iterator[Reading]]:
    def read() -> Iterator[Reading]:
        routing = state.routing
        seen: dict[str, Any] = {}
        for routed in routing.manager.models:
            for route in routed.routes.routes:
                seen.setdefault(route.name, route)
        for name, route in seen.items():
            yield from _route_readings(name, route)
        for routed in routing.manager.models:
            hedged = getattr(getattr(routed, "budget", None), "hedged", None)
            if isinstance(hedged, int):
                yield Reading("hedges", hedged, (routed.routes.name,))
        extra = getattr(routing.manager, "readings", None)  # routing may publish more
        if callable(extra):
            for item in extra():
                if isinstance(item, Reading):
                    yield item

    return read


def _route_readings(name: str, route: Any) -> Iterator[Reading]:
    labels = (name,)
    load = getattr(route, "load", None)
    in_flight = getattr(load, "in_flight", None)
    if isinstance(in_flight, int):
        yield Reading("route_in_flight", in_flight, labels)
    state = getattr(getattr(route, "circuit", None), "state", None)
    if state is not None:
        yield Reading("route_circuit_open", 1.0 if str(state) == "open" else 0.0, labels)
    status = getattr(getattr(route, "health", None), "status", None)
    if status is not None and str(status) in PROBE_UP:
        yield Reading("route_up", PROBE_UP[str(status)], labels)
    engine = getattr(load, "engine", None)
    if engine is not None:
        for field, reading in ENGINE_FIELDS.items():
            value = getattr(engine, field, None)
            if isinstance(value, int | float):
                yield Reading(reading, value, labels)


def budget_readings(state: AppState) -> Callable[[], Iterator[Reading]]:
    """The highest share of a daily / monthly budget any key has spent (no per-key
    labels: which key it is, the admin API says)."""

    def read() -> Iterator[Reading]:
        worst: dict[str, float] = {}
        keys = state.keys
        for key in keys.active_keys():
            spend = keys.spend(key.id)
            for period, budget, spent in (
                ("day", key.daily_budget, spend.day_cost),
                ("month", key.monthly_budget, spend.month_cost),
            ):
                if budget:
                    worst[period] = max(worst.get(period, 0.0), spent / budget)
        for period, ratio in worst.items():
            yield Reading("budget_used_ratio", ratio, (period,))

    return read
