"""Prometheus metrics: per-request series recorded from the ``RequestRecord``, and state
gauges/counters read from whatever the rest of the gateway exposes, at scrape time.

Two kinds of input:

- ``observe(record)`` — called once per request (from ``Exchange.finish``). Label sets
  are bounded: model names come from config (anything else is ``unknown``), routes from
  config, error types and attempt outcomes are capped (``other`` past the cap). The label
  children are cached per label tuple, so the hot path is a dict lookup plus a few adds.
- ``Reading`` sources — callables returning ``Reading(name, value, labels)``, read on
  ``refresh()``. Only names in ``readings.STATE_METRICS`` are exported; unknown ones are ignored,
  so producers (routing health, limits, storage spill) can publish before or after this
  module knows about them.

Several worker processes: with a multiprocess directory, values go to per-process files
that ``render()`` aggregates (prometheus-client's multiprocess mode); state gauges are
refreshed by a periodic task in every worker, combined per ``StateMetric.mode``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
    multiprocess,
)

from hybridinference.observability.readings import (
    STATE_METRICS,
    GaugeMode,
    Reading,
    ReadingSource,
    StateMetric,
)
from hybridinference.schemas.records import RequestRecord

__all__ = [
    "STATE_METRICS",
    "GaugeMode",
    "Reading",
    "ReadingSource",
    "RequestMetrics",
    "StateMetric",
    "model_labels",
]

logger = logging.getLogger(__name__)

PREFIX = "hybridinference_"
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0, 120.0, 300.0)
TTFT_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0)
MAX_LABEL_VALUES = 64  # per open-ended label (error type, attempt outcome)
MAX_CACHED_CHILDREN = 4096  # label-child lookups cached per metric (nothing grows per request)
NOT_FAILURES = frozenset({"ok", "hedge_lost"})  # a hedge leg that lost the race did not fail


class BoundedLabel:
    """Maps open-ended values to themselves until ``limit`` distinct ones, then ``other``."""

    def __init__(self, limit: int = MAX_LABEL_VALUES) -> None:
        self._seen: dict[str, str] = {}
        self._limit = limit

    def __call__(self, value: str) -> str:
        label = self._seen.get(value)
        if label is None:
            label = value if len(self._seen) < self._limit else "other"
            if label != "other":
                self._seen[value] = label
        return label


@dataclass(frozen=True, slots=True)
class _Series:
    """The label children one (endpoint, model, route, status) touches, looked up once."""

    requests: Counter
    duration: Histogram
    ttft: Histogram
    prompt_tokens: Counter
    completion_tokens: Counter
    cost: Counter


@dataclass(slots=True)
class _Counted:
    last: dict[tuple[str, tuple[str, ...]], float] = field(default_factory=dict)


class RequestMetrics:
    def __init__(
        self,
        models: Mapping[str, str],
        *,
        multiprocess_dir: str | None = None,
        per_key_labels: bool = False,
    ) -> None:
        """``models`` maps every public name and alias to its model's name."""
        self._models = dict(models)
        self._dir = multiprocess_dir
        self.registry = CollectorRegistry(auto_describe=True)
        if multiprocess_dir is None:
            ProcessCollector(registry=self.registry)
        self._sources: list[ReadingSource] = []
        self._series: dict[tuple[str, str, str, int], _Series] = {}
        self._attempt_children: dict[tuple[str, str], Counter] = {}  # bounded: see _outcomes
        self._errors = BoundedLabel()
        self._outcomes = BoundedLabel()
        self._counted = _Counted()
        self._build(per_key_labels)

    def _build(self, per_key_labels: bool) -> None:
        reg = self.registry
        series = ("endpoint", "model", "route", "status")
        self.requests = Counter(PREFIX + "requests", "Requests served.", series, registry=reg)
        self.duration = Histogram(
            PREFIX + "request_duration_seconds",
            "Time from the first byte in to the last byte out.",
            ("model", "route"),
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.ttft = Histogram(
            PREFIX + "time_to_first_token_seconds",
            "Time to the first token (streams) or to the answer (JSON).",
            ("model", "route"),
            buckets=TTFT_BUCKETS,
            registry=reg,
        )
        self.tokens = Counter(
            PREFIX + "tokens", "Tokens used.", ("model", "route", "kind"), registry=reg
        )
        self.cost = Counter(
            PREFIX + "cost_usd", "Cost in US dollars.", ("model", "route"), registry=reg
        )
        self.errors = Counter(
            PREFIX + "errors",
            "Failed requests by error type.",
            ("model", "error_type"),
            registry=reg,
        )
        self.attempts = Counter(
            PREFIX + "upstream_attempts",
            "Routing attempts by route and outcome.",
            ("route", "outcome"),
            registry=reg,
        )
        self.fallbacks = Counter(
            PREFIX + "fallbacks",
            "Requests that needed more than one attempt.",
            ("model",),
            registry=reg,
        )
        self.key_requests: Counter | None = None
        self.key_tokens: Counter | None = None
        self.key_cost: Counter | None = None
        if per_key_labels:
            self.key_requests = Counter(
                PREFIX + "key_requests", "Requests per API key.", ("key_id", "status"), registry=reg
            )
            self.key_tokens = Counter(
                PREFIX + "key_tokens", "Tokens per API key.", ("key_id",), registry=reg
            )
            self.key_cost = Counter(
                PREFIX + "key_cost_usd", "Cost per API key (US dollars).", ("key_id",), registry=reg
            )
        self._build_state()

    def _build_state(self) -> None:
        reg = self.registry
        self.state: dict[str, Gauge | Counter] = {}
        for name, spec in STATE_METRICS.items():
            if spec.kind == "gauge":
                self.state[name] = Gauge(
                    PREFIX + name, spec.help, spec.labels, registry=reg, multiprocess_mode=spec.mode
                )
            else:
                self.state[name] = Counter(PREFIX + name, spec.help, spec.labels, registry=reg)

    # -- per request -------------------------------------------------------------------

    def observe(self, record: RequestRecord) -> None:
        model = self._models.get(record.model, "unknown") if record.model else "none"
        route = record.route or "none"
        key = (record.endpoint, model, route, record.status)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = self._new_series(key)
        series.requests.inc()
        series.duration.observe(record.latency_ms / 1000)
        if record.ttft_ms is not None and record.status < 400:
            series.ttft.observe(record.ttft_ms / 1000)
        if record.total_tokens:
            series.prompt_tokens.inc(record.prompt_tokens)
            series.completion_tokens.inc(record.completion_tokens)
        if record.cost:
            series.cost.inc(record.cost)
        if record.error_type is not None:
            self.errors.labels(model, self._errors(record.error_type)).inc()
        failed = False
        for attempt in record.attempts:
            key2 = (attempt.route, attempt.outcome)
            child = self._attempt_children.get(key2)
            if child is None:
                child = self.attempts.labels(attempt.route, self._outcomes(attempt.outcome))
                if len(self._attempt_children) < MAX_CACHED_CHILDREN:
                    self._attempt_children[key2] = child
            child.inc()
            failed = failed or attempt.outcome not in NOT_FAILURES
        if failed and len(record.attempts) > 1:  # another route was tried after a failure
            self.fallbacks.labels(model).inc()
        if self.key_requests is not None and record.key_id is not None:
            self._observe_key(record)

    def _new_series(self, key: tuple[str, str, str, int]) -> _Series:
        endpoint, model, route, status = key
        return _Series(
            requests=self.requests.labels(endpoint, model, route, str(status)),
            duration=self.duration.labels(model, route),
            ttft=self.ttft.labels(model, route),
            prompt_tokens=self.tokens.labels(model, route, "prompt"),
            completion_tokens=self.tokens.labels(model, route, "completion"),
            cost=self.cost.labels(model, route),
        )

    def _observe_key(self, record: RequestRecord) -> None:
        assert self.key_requests and self.key_tokens and self.key_cost and record.key_id
        self.key_requests.labels(record.key_id, str(record.status)).inc()
        self.key_tokens.labels(record.key_id).inc(record.total_tokens)
        self.key_cost.labels(record.key_id).inc(record.cost)

    def set_models(self, models: Mapping[str, str]) -> None:
        """New model labels after a config reload (names and aliases → model name)."""
        self._models = dict(models)

    # -- state, read at scrape time ---------------------------------------------------

    def add_source(self, source: ReadingSource) -> None:
        self._sources.append(source)

    def refresh(self) -> None:
        for source in self._sources:
            try:
                for reading in source():
                    self._apply(reading)
            except Exception:  # a broken source must not break the scrape
                logger.exception("metrics source %r failed", source)

    def _apply(self, reading: Reading) -> None:
        spec = STATE_METRICS.get(reading.name)
        if spec is None or len(reading.labels) != len(spec.labels):
            return
        metric = self.state[reading.name]
        child = metric.labels(*reading.labels) if reading.labels else metric
        if isinstance(child, Gauge):
            child.set(reading.value)
            return
        key = (reading.name, reading.labels)
        last = self._counted.last.get(key, 0.0)
        delta = reading.value - last if reading.value >= last else reading.value
        self._counted.last[key] = reading.value
        if delta > 0:
            child.inc(delta)

    async def run_refresher(self, interval: float) -> None:
        """Keep this worker's state gauges current (other workers' scrapes read them)."""
        while True:
            self.refresh()
            await asyncio.sleep(interval)

    def render(self) -> tuple[bytes, str]:
        """The exposition: this process's registry, or every worker's files aggregated.
        Blocking (it may read files): call it off the event loop."""
        if self._dir is None:
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=self._dir)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST

    def close(self, pid: int) -> None:
        """Drop this worker's live gauges from the shared directory."""
        if self._dir is not None:
            multiprocess.mark_process_dead(pid, self._dir)  # type: ignore[no-untyped-call]


def model_labels(models: Iterable[tuple[str, Iterable[str]]]) -> dict[str, str]:
    """``(name, aliases)`` pairs → every name and alias mapped to the model's name."""
    out: dict[str, str] = {}
    for name, aliases in models:
        out[name] = name
        for alias in aliases:
            out[alias] = name
    return out
