"""The state metrics registry: every gauge or counter the gateway's parts may publish at
scrape time, by name, with its help text, labels and how worker processes combine it.

A part publishes by handing ``RequestMetrics.add_source`` a callable that returns
``Reading``s; adding a metric means adding one entry to ``STATE_METRICS`` here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

GaugeMode = Literal["livesum", "livemax", "livemin"]


@dataclass(frozen=True, slots=True)
class Reading:
    name: str  # a key of STATE_METRICS
    value: float
    labels: tuple[str, ...] = ()


ReadingSource = Callable[[], Iterable[Reading]]


@dataclass(frozen=True, slots=True)
class StateMetric:
    kind: Literal["gauge", "counter"]
    help: str
    labels: tuple[str, ...] = ()
    mode: GaugeMode = "livesum"  # how worker processes combine a gauge


STATE_METRICS: Mapping[str, StateMetric] = {
    "in_flight_requests": StateMetric("gauge", "Requests being served now."),
    "route_in_flight": StateMetric("gauge", "Upstream calls in flight per route.", ("route",)),
    "route_up": StateMetric(
        "gauge", "1 when health checks pass for the route, 0 when down.", ("route",), "livemin"
    ),
    "route_circuit_open": StateMetric(
        "gauge", "1 while the route's circuit breaker is open.", ("route",), "livemax"
    ),
    "engine_requests_running": StateMetric(
        "gauge", "Requests running on a local engine (scraped).", ("route",), "livemax"
    ),
    "engine_requests_waiting": StateMetric(
        "gauge", "Requests queued on a local engine (scraped).", ("route",), "livemax"
    ),
    "engine_kv_cache_usage_ratio": StateMetric(
        "gauge", "KV-cache usage of a local engine, 0..1 (scraped).", ("route",), "livemax"
    ),
    "budget_used_ratio": StateMetric(
        "gauge", "Highest share of a spend budget used by any key, 0..1.", ("period",), "livemax"
    ),
    "hedges": StateMetric("counter", "Backup (hedged) attempts started.", ("model",)),
    "limits_backend_up": StateMetric(
        "gauge", "0 while the rate-limit backend (Redis) is unreachable.", (), "livemin"
    ),
    "limits_admitted": StateMetric("counter", "Requests admitted by a per-key limit check."),
    "limits_refused": StateMetric("counter", "Requests refused by a per-key limit (429)."),
    "limits_failed_open": StateMetric(
        "counter", "Requests let through unchecked: limiter unreachable, policy open."
    ),
    "limits_failed_closed": StateMetric(
        "counter", "Requests refused (503): limiter unreachable, policy closed."
    ),
    "limits_outages": StateMetric("counter", "Times the rate-limit backend became unreachable."),
    "limits_backend_errors": StateMetric("counter", "Failed calls to the rate-limit backend."),
    "limits_settle_dropped": StateMetric(
        "counter", "Finished requests whose usage could not be settled with the limiter."
    ),
    "log_queue_depth": StateMetric("gauge", "Request-log rows waiting in memory."),
    "log_spill_bytes": StateMetric("gauge", "Request-log bytes waiting in the spill journal."),
    "log_database_up": StateMetric(
        "gauge", "0 from a failed request-log write until the next success.", (), "livemin"
    ),
    "log_rows_written": StateMetric("counter", "Request-log rows written to the database."),
    "log_rows_dropped": StateMetric("counter", "Request-log rows refused: queue full."),
    "log_rows_lost": StateMetric("counter", "Request-log rows neither written nor spilled."),
    "log_rows_spilled": StateMetric("counter", "Request-log rows spilled to the local journal."),
    "log_failed_batches": StateMetric("counter", "Request-log batch writes that failed."),
    "log_rows_rejected": StateMetric(
        "counter", "Request-log rows the database refused one by one (not retried)."
    ),
    "auth_failures": StateMetric("counter", "Requests refused for a bad API key or token (401)."),
    "auth_throttled": StateMetric(
        "counter", "Requests refused (429) because their address failed authentication often."
    ),
    "config_info": StateMetric(
        "gauge",
        "1 per process serving this config version (file hash); workers add up.",
        ("version",),
    ),
    "config_reloads": StateMetric("counter", "Config reloads by result.", ("result",)),
    "config_overrides": StateMetric(
        "gauge", "Runtime overrides applied on top of the config file.", (), "livemax"
    ),
    "config_overrides_stale": StateMetric(
        "gauge", "Runtime overrides naming a model or route the file no longer has.", (), "livemax"
    ),
    "auth_throttle_addresses": StateMetric(
        "gauge", "Client addresses with recent failed authentications being tracked."
    ),
}
